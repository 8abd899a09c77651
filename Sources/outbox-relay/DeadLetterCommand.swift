import ArgumentParser
import Foundation
import Logging
import OutboxRelay

/// `outbox-relay dlq …`: inspect, replay and purge dead letters.
///
/// Exit codes: 0 on success (including "no dead letters match"), 1 when the database cannot be
/// used, 2 when the command line is wrong (invalid filter, bad --to-topic, purge without --yes) —
/// in which case nothing was read or changed.
struct DeadLetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "Inspect, replay and purge dead letters (messages that could not be published).",
        discussion: """
            Filters (list, stats, replay, purge): --topic, --key, --reason, --id (each repeatable; \
            values of one option are ORed, different options ANDed), --since / --until (an ISO-8601 \
            time such as 2026-11-25T10:00:00Z, or a duration ago such as 30m, 2h, 7d).

            Replayed messages get new outbox ids: they are published after everything already \
            pending for their key. Every replay and purge (dry runs too) is recorded in the \
            dlq_audit table; `dlq audit` shows it.
            """,
        subcommands: [
            DeadLetterListCommand.self, DeadLetterShowCommand.self, DeadLetterStatsCommand.self,
            DeadLetterReplayCommand.self, DeadLetterPurgeCommand.self, DeadLetterAuditCommand.self,
        ])
}

/// The filter options shared by list, stats, replay and purge. Values are taken as text and
/// checked by `DeadLetterFilter.parse`, so every mistake gets the same one-line error and exit 2.
struct DeadLetterFilterOptions: ParsableArguments {
    @Option(name: .customLong("topic"), help: "Only dead letters of this topic (repeatable).")
    var topics: [String] = []
    @Option(name: .customLong("key"), help: "Only dead letters with this message key (repeatable).")
    var keys: [String] = []
    @Option(
        name: .customLong("reason"),
        help: "Only this reason: message_too_large, invalid_topic, undecodable, broker_rejected, attempts_exhausted (repeatable).")
    var reasons: [String] = []
    @Option(name: .customLong("id"), help: "Only this dead-letter id (repeatable).")
    var ids: [String] = []
    @Option(help: "Dead at or after this time: 2026-11-25T10:00:00Z, 2026-11-25, or a duration ago like 2h or 7d.")
    var since: String?
    @Option(help: "Dead before this time (same forms as --since).")
    var until: String?

    func filter(status: String? = nil) throws(DeadLetterFilterError) -> DeadLetterFilter {
        try DeadLetterFilter.parse(topics: topics, keys: keys, reasons: reasons, ids: ids, since: since, until: until, status: status)
    }
}

/// Options of the commands that change dead letters.
struct DeadLetterActionOptions: ParsableArguments {
    @Option(help: "Who is acting, for the audit trail (default $USER@host).")
    var actor: String?
    @Option(name: .customLong("batch-size"), help: "Dead letters changed per statement and commit (default 500).")
    var batchSize: String?

    var resolvedActor: String {
        if let actor, !actor.isEmpty { return actor }
        let environment = ProcessInfo.processInfo.environment
        let user = environment["USER"] ?? environment["LOGNAME"] ?? "unknown"
        return "\(user)@\(ProcessInfo.processInfo.hostName)"
    }

    func resolvedBatchSize() throws(DeadLetterFilterError) -> Int {
        guard let batchSize else { return 500 }
        return try DeadLetterFilter.parseCount(batchSize, option: "--batch-size")
    }
}

/// Reports a command-line mistake on one line and returns exit code 2 (nothing was changed).
func invalidUsage(_ error: DeadLetterFilterError) -> ExitCode {
    CommandFailure.report(error.description)
    return ExitCode(2)
}

/// Runs `body` with a dead-letter store, turning database errors into one-line reports (exit 1).
func withDeadLetterStore<T: Sendable>(
    _ settings: RelaySettings, logger: Logger, _ body: @Sendable (DeadLetterStore) async throws -> T
) async throws -> T {
    do {
        let schema = settings.relay.schema
        return try await withPostgresClient(settings, logger: logger) { client in
            try await body(DeadLetterStore(client: client, schema: schema))
        }
    } catch let error as DeadLetterFilterError {
        throw invalidUsage(error)
    } catch {
        throw CommandFailure.exit(error, settings: settings)
    }
}
