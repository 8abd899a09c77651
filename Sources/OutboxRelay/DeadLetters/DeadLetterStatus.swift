/// Where a dead letter is in its life: still `dead` (waiting for an operator), `replayed` (moved
/// back into the outbox; `replay_id` names the new outbox message) or `purged` (given up on; the
/// row stays as a tombstone without its payload, for the audit trail).
public enum DeadLetterStatus: String, Sendable, CaseIterable, Codable {
    case dead
    case replayed
    case purged
}
