import ArgumentParser
import Foundation
import Logging
import OutboxRelay

struct DeadLetterStatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Count dead letters per topic and reason, with the oldest and newest.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var filterOptions: DeadLetterFilterOptions
    @Option(help: "dead, replayed, purged or all (default dead).") var status: String?
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        let settings = try await global.settings()
        let logger = Logger(label: "outbox-relay.dlq")
        let filter: DeadLetterFilter
        do {
            filter = try filterOptions.filter(status: status)
        } catch {
            throw invalidUsage(error)
        }
        let stats = try await withDeadLetterStore(settings, logger: logger) { store in
            try await store.stats(filter, logger: logger)
        }
        if json {
            struct Output: Encodable { var groups: [DeadLetterStats.Group]; var total: Int64 }
            print(try DeadLetterOutput.json(Output(groups: stats.groups, total: stats.total)))
            return
        }
        guard !stats.groups.isEmpty else {
            print("no dead letters match (\(DeadLetterOutput.describe(filter)))")
            return
        }
        print(
            DeadLetterOutput.table(
                ["TOPIC", "REASON", "COUNT", "OLDEST", "NEWEST"],
                stats.groups.map {
                    [DeadLetterOutput.clip($0.topic, 50), $0.reason, "\($0.count)",
                     DeadLetterOutput.time($0.oldestDeadAt), DeadLetterOutput.time($0.newestDeadAt)]
                }))
        print("total: \(stats.total) (\(DeadLetterOutput.describe(filter)))")
    }
}
