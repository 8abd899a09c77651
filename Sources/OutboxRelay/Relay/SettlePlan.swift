import NIOCore

/// What becomes of every row of a produced batch, decided from the rows (in id order), what the
/// envelope builder and the delivery reports said about each, and the retry policy: delete,
/// retry, dead-letter, or leave. Pure, so every combination is unit-tested; `BatchPipeline` only
/// runs the statements.
///
/// **No gap in a key.** A delivered record cannot be recalled, so gaps are prevented upstream (the
/// producer gives up on a batch by purging everything outstanding at once, which fails a suffix of
/// every partition, never a hole; see `KafkaProducer.send(_:until:abandonWhen:)`). This type is the
/// second line: a delivered row is never deleted while an earlier row of its key in the same batch
/// is still to be published (retried or left). It stays in the outbox (``heldBack``), and the next
/// read, which never passes a key's earlier pending message, publishes it again after that one.
/// A consumer then sees the later message twice, the second copy after the earlier message, so
/// applying the last copy of each id (or keeping the highest `sequence` per key) is still right.
/// Dead-lettered rows do not hold their key back: a dead letter is taken out of the key's order on
/// purpose (and replayed, if ever, after everything pending).
struct SettlePlan: Sendable {
    /// What happened to one row before the settle.
    enum RowResult: Sendable {
        /// The envelope builder refused it (too large, invalid topic, undecodable headers).
        case poison(DeadLetterReason, String)
        case delivered
        case failed(DeliveryError)
        /// Still in flight (a straggler the send left behind): settled when its report arrives.
        case inFlight
    }

    /// Delivered, and no earlier row of their key is still to be published: deleted.
    var delivered: [PendingMessage] = []
    var retries: [RetryDecision] = []
    var deadLetters: [DeadLetterDecision] = []
    /// Delivered, but behind an earlier row of their key that was not: left for the next batch.
    var heldBack: [Int64] = []
    /// Failed because the broker (or the path to it) was unavailable: left as they are, no attempt spent.
    var left: [Int64] = []
    /// Still in flight: nothing is written for them now, and their keys wait (``heldBack``) like a retry's.
    var inFlight: [Int64] = []
    /// Keys of in-flight rows that came after an earlier failed row of their key (retried or left):
    /// such a row must not be deleted when it turns out delivered (settle it with these as `blockedKeys`).
    var keysBlockingInFlight: Set<ByteBuffer> = []
    /// The first outage-class failure, if any: the pipeline pauses until the broker answers.
    var outage: DeliveryError?

    /// `blockedKeys`: keys with an earlier row outside `rows` still to be published (for stragglers
    /// settled after their batch: the failures of that batch ahead of them).
    init(_ rows: [(row: PendingMessage, result: RowResult)], retry: RetryPolicy, blockedKeys: Set<ByteBuffer> = []) {
        // Keys with an earlier row that is still to be published; `failed`: by a failure, not a row in flight.
        var blocked = blockedKeys
        var failed = blockedKeys
        func block(_ row: PendingMessage, failure: Bool = true) {
            guard let key = row.key else { return }
            blocked.insert(key)
            if failure { failed.insert(key) }
        }
        for (row, result) in rows {
            let attempts = Int(row.attempts) + 1
            switch result {
            case .poison(let reason, let error):
                deadLetters.append(DeadLetterDecision(id: row.id, reason: reason, error: error, attempts: row.attempts))
            case .inFlight:
                inFlight.append(row.id)
                if let key = row.key, failed.contains(key) { keysBlockingInFlight.insert(key) }
                block(row, failure: false)
            case .delivered:
                if let key = row.key, blocked.contains(key) {
                    heldBack.append(row.id)
                } else {
                    delivered.append(row)
                }
            case .failed(let error):
                switch error.failureClass {
                case .outage:
                    outage = outage ?? error
                    left.append(row.id)
                    block(row)
                case .permanent:
                    deadLetters.append(
                        DeadLetterDecision(
                            id: row.id, reason: .brokerRejected, error: "\(error.name): \(error.message)", attempts: Int32(attempts)))
                case .retriable where retry.isExhausted(afterAttempts: attempts):
                    deadLetters.append(
                        DeadLetterDecision(
                            id: row.id, reason: .attemptsExhausted,
                            error: "gave up after \(attempts) attempts; last error \(error.name): \(error.message)",
                            attempts: Int32(attempts)))
                case .retriable:
                    retries.append(
                        RetryDecision(
                            id: row.id, delayMilliseconds: retry.delay(afterAttempt: attempts).milliseconds,
                            error: "\(error.name): \(error.message)"))
                    block(row)
                }
            }
        }
    }
}
