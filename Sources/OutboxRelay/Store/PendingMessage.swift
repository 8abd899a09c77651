import Foundation
import NIOCore

/// One outbox row as the relay reads it for publishing.
struct PendingMessage: Sendable {
    var id: Int64
    var topic: String
    var key: ByteBuffer?
    var lane: Int16
    var payload: ByteBuffer
    /// The `headers` jsonb column as text; decoded only when the envelope is built.
    var headersJSON: String
    var contentType: String?
    var type: String?
    var createdAt: Date
    /// Attempts already spent (0 for a first try).
    var attempts: Int32

    /// What the batch byte limit counts of this row (as `RelayStore.readBatch`'s SQL does).
    var budgetBytes: Int { payload.readableBytes + (key?.readableBytes ?? 0) }
}

/// A failed attempt to schedule again: `attempts + 1`, not before `delay` from now.
struct RetryDecision: Sendable {
    var id: Int64
    var delayMilliseconds: Int64
    var error: String
}

/// A message to move to the dead-letter table.
struct DeadLetterDecision: Sendable {
    var id: Int64
    var reason: DeadLetterReason
    var error: String
    /// The attempts count to record (the row's count plus the attempt that just failed, if any).
    var attempts: Int32
}
