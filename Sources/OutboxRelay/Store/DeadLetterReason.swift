/// Why a message was moved to the dead-letter table: a stable, machine-readable class that
/// operators filter on (`dlq list --reason ...`); the human-readable detail goes to `error`.
public enum DeadLetterReason: String, Sendable, CaseIterable, Codable {
    /// The encoded envelope is larger than the configured maximum message size.
    case messageTooLarge = "message_too_large"
    /// The topic name breaks Kafka's rules (`[a-zA-Z0-9._-]`, 1-249 characters, not `.` or `..`).
    case invalidTopic = "invalid_topic"
    /// The row cannot be turned into an envelope (e.g. headers that are not a JSON object).
    case undecodable = "undecodable"
    /// The broker refused the record for good (authorization, record too large, invalid record).
    case brokerRejected = "broker_rejected"
    /// Retriable failures used up every attempt.
    case attemptsExhausted = "attempts_exhausted"
}
