import ArgumentParser
import Foundation
import Logging
import OutboxRelay

struct DeadLetterReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Move dead letters back into the outbox to be published again.",
        discussion: """
            Only dead letters with status dead are replayed, oldest first; each becomes a new outbox \
            message (new id, header outbox-replay-of: <dead-letter id>) and is marked replayed with \
            a reference to it. New ids mean replayed messages are published after everything already \
            pending for their key. Two replays running at once never replay a message twice. \
            Fix the cause first (raise max-message-bytes, create the topic, …) or the messages die again.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var filterOptions: DeadLetterFilterOptions
    @OptionGroup var action: DeadLetterActionOptions
    @Option(name: .customLong("to-topic"), help: "Publish to this topic instead of the original one.")
    var toTopic: String?
    @Option(help: "Replay at most this many (oldest first).") var limit: String?
    @Flag(name: .customLong("dry-run"), help: "Show what would be replayed; change nothing (the dry run is audited).")
    var dryRun = false
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        let settings = try await global.settings()
        let logger = Logger(label: "outbox-relay.dlq")
        let request: DeadLetterReplayRequest
        do {
            request = DeadLetterReplayRequest(
                filter: try filterOptions.filter(),
                toTopic: toTopic,
                limit: try limit.map { text throws(DeadLetterFilterError) in try DeadLetterFilter.parseCount(text, option: "--limit") },
                batchSize: try action.resolvedBatchSize(),
                dryRun: dryRun,
                actor: action.resolvedActor)
            try request.validate()
        } catch {
            throw invalidUsage(error)
        }
        let result = try await withDeadLetterStore(settings, logger: logger) { store in
            try await store.replay(request, logger: logger)
        }
        if json {
            print(try DeadLetterOutput.json(result))
            return
        }
        var filter = request.filter
        filter.statuses = [.dead]
        guard result.count > 0 else {
            print("no dead letters match (\(DeadLetterOutput.describe(filter))); nothing to replay")
            return
        }
        let redirect = request.toTopic.map { " to topic \($0)" } ?? ""
        if result.dryRun {
            print("dry run: would replay \(result.count) dead letter(s)\(redirect); nothing changed (audit \(result.auditID))")
            print(DeadLetterOutput.summaryTable(result.wouldReplay))
            if result.count > result.wouldReplay.count {
                print("… and \(result.count - result.wouldReplay.count) more")
            }
            return
        }
        print("replayed \(result.count) dead letter(s)\(redirect) (audit \(result.auditID)); relays publish them after what is already pending for their keys")
        let shown = 20
        for pair in result.replayed.prefix(shown) {
            print("  dead letter \(pair.deadLetterID) -> outbox message \(pair.outboxID)")
        }
        if result.replayed.count > shown {
            print("  … and \(result.replayed.count - shown) more (--json lists every pair)")
        }
    }
}
