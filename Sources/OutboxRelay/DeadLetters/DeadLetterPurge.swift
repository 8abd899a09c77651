import Foundation

/// What `dlq purge` should do.
///
/// Purging keeps the row as a tombstone: status `purged`, `purged_at` set, the payload emptied, and
/// the metadata (topic, key, headers, reason, error, times) kept. The payload is what is large and
/// what may hold personal data; the metadata is what an audit ("what happened to message 123?")
/// needs, and it is small. Rows are never deleted by the CLI.
public struct DeadLetterPurgeRequest: Sendable {
    /// Which dead letters; `statuses` may include `replayed` (to drop the payloads of replayed rows
    /// too) but never `purged`.
    public var filter: DeadLetterFilter
    /// Purge at most this many (oldest id first); `nil` means every match.
    public var limit: Int?
    public var batchSize: Int
    /// Only report what would be purged (an audit row with `dry_run = true` is still written).
    public var dryRun: Bool
    public var actor: String
    /// The audit id of the dry run this purge confirms (the console's second step): the purge is
    /// refused unless that dry run had the same action, actor and selection and is recent.
    public var confirming: Int64? = nil

    public init(filter: DeadLetterFilter, limit: Int? = nil, batchSize: Int = 500, dryRun: Bool = false, actor: String) {
        self.filter = filter
        self.limit = limit
        self.batchSize = batchSize
        self.dryRun = dryRun
        self.actor = actor
    }

    public func validate() throws(DeadLetterFilterError) {
        if filter.statuses.contains(.purged) {
            throw DeadLetterFilterError(option: "--status", problem: "purged rows are already purged; use dead, replayed or all")
        }
        if let limit, limit < 1 { throw DeadLetterFilterError(option: "--limit", problem: "must be at least 1") }
        guard (1...10_000).contains(batchSize) else {
            throw DeadLetterFilterError(option: "--batch-size", problem: "\(batchSize) is not from 1 to 10000")
        }
    }
}

/// What a purge did (or, for a dry run, would do).
public struct DeadLetterPurgeResult: Sendable, Codable {
    public var auditID: Int64
    public var dryRun: Bool
    public var count: Int
    /// The ids purged, ascending (empty for a dry run).
    public var purged: [Int64]
    /// For a dry run: the first matches, oldest first.
    public var wouldPurge: [DeadLetterSummary]
}
