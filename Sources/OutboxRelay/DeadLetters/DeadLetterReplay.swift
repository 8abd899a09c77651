import Foundation

/// What `dlq replay` should do.
public struct DeadLetterReplayRequest: Sendable {
    /// Which dead letters; replay always takes only rows with status `dead` (whatever `statuses`
    /// says), so a replayed message can never be replayed twice.
    public var filter: DeadLetterFilter
    /// Publish to this topic instead of the original one (e.g. after a topic was renamed, or for
    /// `invalid_topic` dead letters). Checked against Kafka's naming rules.
    public var toTopic: String?
    /// Replay at most this many (oldest id first); `nil` means every match.
    public var limit: Int?
    /// Dead letters moved per statement (and per commit): small enough to keep locks short and let
    /// relays start publishing while a large replay is still running.
    public var batchSize: Int
    /// Only report what would be replayed (an audit row with `dry_run = true` is still written).
    public var dryRun: Bool
    /// Who is replaying, for the audit trail (e.g. `alice@ops-host`).
    public var actor: String
    /// The audit id of the dry run this replay confirms (the console's second step): the replay is
    /// refused unless that dry run had the same action, actor and selection and is recent.
    public var confirming: Int64? = nil

    public init(
        filter: DeadLetterFilter, toTopic: String? = nil, limit: Int? = nil, batchSize: Int = 500,
        dryRun: Bool = false, actor: String
    ) {
        self.filter = filter
        self.toTopic = toTopic
        self.limit = limit
        self.batchSize = batchSize
        self.dryRun = dryRun
        self.actor = actor
    }

    /// Checks the parts the filter does not cover; throws before anything is read or changed.
    public func validate() throws(DeadLetterFilterError) {
        if let toTopic, let problem = KafkaTopicName.problem(with: toTopic) {
            throw DeadLetterFilterError(option: "--to-topic", problem: problem)
        }
        if let limit, limit < 1 { throw DeadLetterFilterError(option: "--limit", problem: "must be at least 1") }
        guard (1...10_000).contains(batchSize) else {
            throw DeadLetterFilterError(option: "--batch-size", problem: "\(batchSize) is not from 1 to 10000")
        }
    }
}

/// What a replay did (or, for a dry run, would do).
public struct DeadLetterReplayResult: Sendable, Codable {
    /// One dead letter and the outbox message it became.
    public struct Pair: Sendable, Codable, Equatable {
        public var deadLetterID: Int64
        public var outboxID: Int64
    }

    public var auditID: Int64
    public var dryRun: Bool
    /// How many were replayed (or would be).
    public var count: Int
    /// Every dead letter replayed and its new outbox id, in dead-letter id order (empty for a dry run).
    public var replayed: [Pair]
    /// For a dry run: the first matches, oldest first (at most `DeadLetterStore.dryRunSampleSize`).
    public var wouldReplay: [DeadLetterSummary]
}
