import ArgumentParser
import Foundation
import Logging
import OutboxRelay

struct DeadLetterPurgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Give up on dead letters: drop their payloads and mark them purged.",
        discussion: """
            Purged rows stay in the table as tombstones (status purged, purged_at set, payload \
            emptied; topic, key, headers, reason and error kept) so the audit trail can still say \
            what happened to a message. Needs --yes, or --dry-run to only see what would be purged.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var filterOptions: DeadLetterFilterOptions
    @OptionGroup var action: DeadLetterActionOptions
    @Option(name: .customLong("older-than"), help: "Only dead letters that died longer ago than this (e.g. 7d, 12h).")
    var olderThan: String?
    @Option(help: "dead, replayed or all (default dead): replayed rows still hold their payloads.") var status: String?
    @Option(help: "Purge at most this many (oldest first).") var limit: String?
    @Flag(name: .customLong("dry-run"), help: "Show what would be purged; change nothing (the dry run is audited).")
    var dryRun = false
    @Flag(help: "Confirm the purge (payloads cannot be recovered).") var yes = false
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        let settings = try await global.settings()
        let logger = Logger(label: "outbox-relay.dlq")
        let request: DeadLetterPurgeRequest
        do throws(DeadLetterFilterError) {
            var filter = try filterOptions.filter()
            if let status {
                filter.statuses = try DeadLetterFilter.parseStatus(status, option: "--status", allowed: [.dead, .replayed])
            }
            if let olderThan {
                guard filter.until == nil else {
                    throw DeadLetterFilterError(option: "--older-than", problem: "give --older-than or --until, not both")
                }
                filter.until = try DeadLetterTimeBound.parse(olderThan, option: "--older-than")
                try filter.checkRange(untilOption: "--older-than")
            }
            request = DeadLetterPurgeRequest(
                filter: filter,
                limit: try limit.map { text throws(DeadLetterFilterError) in try DeadLetterFilter.parseCount(text, option: "--limit") },
                batchSize: try action.resolvedBatchSize(),
                dryRun: dryRun,
                actor: action.resolvedActor)
            try request.validate()
            guard yes || dryRun else {
                throw DeadLetterFilterError(
                    option: "--yes",
                    problem: "purge drops payloads for good: add --yes to go ahead, or --dry-run to see what it would purge")
            }
        } catch {
            throw invalidUsage(error)
        }
        let result = try await withDeadLetterStore(settings, logger: logger) { store in
            try await store.purge(request, logger: logger)
        }
        if json {
            print(try DeadLetterOutput.json(result))
            return
        }
        guard result.count > 0 else {
            print("no dead letters match (\(DeadLetterOutput.describe(request.filter))); nothing to purge")
            return
        }
        if result.dryRun {
            print("dry run: would purge \(result.count) dead letter(s); nothing changed (audit \(result.auditID))")
            print(DeadLetterOutput.summaryTable(result.wouldPurge))
            if result.count > result.wouldPurge.count {
                print("… and \(result.count - result.wouldPurge.count) more")
            }
            return
        }
        let ids = result.purged
        let range = ids.count == 1 ? "id \(ids[0])" : "ids \(ids.first!)…\(ids.last!)"
        print("purged \(result.count) dead letter(s) (\(range)); payloads dropped, metadata kept (audit \(result.auditID))")
    }
}
