import Foundation

/// Everything known about one dead letter (`dlq show`): the row itself, the operator action that
/// last changed it, and what became of its replay.
public struct DeadLetter: Sendable, Codable {
    public var summary: DeadLetterSummary
    public var lane: Int16
    /// The headers as stored (a JSON object of strings, unless the reason is `undecodable`).
    public var headersJSON: String
    public var contentType: String?
    public var type: String?
    /// The relay that dead-lettered it.
    public var relay: String?
    public var purgedAt: Date?
    /// The payload bytes (empty once purged).
    public var payload: Data
    /// The `replay` or `purge` that last changed this row.
    public var lastAction: DeadLetterAuditEntry?
    /// The dead letter this message was itself replayed from, when a replay died again.
    public var replayOf: Int64?
    /// What became of the replayed message: still `pending` in the outbox, `published` (gone from
    /// the outbox, which only happens after the broker acknowledged it), or `dead again`.
    public var replayState: String?
}

/// One row of `dlq_audit`: who replayed or purged dead letters, when, and how many.
public struct DeadLetterAuditEntry: Sendable, Codable, Equatable {
    public var id: Int64
    public var at: Date
    public var actor: String
    public var action: String
    public var count: Int32
    public var dryRun: Bool
    /// The filter as stored (JSON).
    public var filterJSON: String
}
