import ArgumentParser
import Foundation
import Logging
import OutboxRelay

struct DeadLetterAuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show the audit trail of replays and purges, newest first.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Show at most this many (default 20).") var limit: String?
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        let settings = try await global.settings()
        let logger = Logger(label: "outbox-relay.dlq")
        let count: Int
        do {
            count = try limit.map { text throws(DeadLetterFilterError) in try DeadLetterFilter.parseCount(text, option: "--limit") } ?? 20
        } catch {
            throw invalidUsage(error)
        }
        let entries = try await withDeadLetterStore(settings, logger: logger) { store in
            try await store.audit(limit: count, logger: logger)
        }
        if json {
            print(try DeadLetterOutput.json(entries))
            return
        }
        guard !entries.isEmpty else {
            print("no replay or purge recorded yet")
            return
        }
        print(
            DeadLetterOutput.table(
                ["AUDIT", "AT", "ACTOR", "ACTION", "COUNT", "FILTER"],
                entries.map {
                    ["\($0.id)", DeadLetterOutput.time($0.at), $0.actor, $0.dryRun ? "\($0.action) (dry run)" : $0.action,
                     "\($0.count)", $0.filterJSON]
                }))
    }
}
