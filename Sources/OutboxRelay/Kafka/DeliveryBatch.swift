import CRdKafka

/// One slot per record of a ``DeliveryBatch``; a slot's address is that record's librdkafka message opaque
/// (`rd_kafka_message_t._private`), which is how a delivery report finds its record without any per-message
/// allocation on our side.
struct DeliverySlot {
    /// The batch the slot belongs to, unretained: the sending task keeps the batch alive until every slot has
    /// completed, and no slot is touched after its completion.
    var batch: UnsafeMutableRawPointer
    /// ``DeliveryBatch/pending`` until completed, then the `rd_kafka_resp_err_t` raw value (0 = delivered).
    var code: Int32
}

struct DeliveryBatchHeader {
    /// Slots not yet completed, plus one "hold" owned by the sending task until it finished enqueueing
    /// and stored its continuation. Only changed through `outbox_atomic_sub_fetch_i64`.
    var remaining: Int64
    /// Resumed by whoever brings ``remaining`` to zero. Written by the sender before it releases its hold
    /// (release), read only after observing zero (acquire).
    var continuation: CheckedContinuation<Void, Never>?
    let count: Int
}

/// The delivery state of one ``KafkaProducer/send(_:)`` call: a header and a slot per record in a single
/// allocation (`ManagedBuffer`), completed from librdkafka's delivery-report callback on the poll thread and
/// from the sender for local failures.
///
/// Completion protocol: each slot is completed exactly once (code written, then `remaining` decremented with
/// acquire-release ordering); the sender additionally releases its hold once. Exactly one party sees `remaining`
/// reach zero and resumes the continuation, after which the sender reads every code.
final class DeliveryBatch: ManagedBuffer<DeliveryBatchHeader, DeliverySlot> {
    /// The code of a slot whose delivery report has not arrived yet.
    static let pending = Int32.min

    static func make(count: Int) -> DeliveryBatch {
        let buffer = create(minimumCapacity: count) { _ in
            DeliveryBatchHeader(remaining: Int64(count) + 1, continuation: nil, count: count)
        }
        let batch = unsafeDowncast(buffer, to: DeliveryBatch.self)
        let unretained = Unmanaged.passUnretained(batch).toOpaque()
        batch.withUnsafeMutablePointerToElements { slots in
            slots.initialize(repeating: DeliverySlot(batch: unretained, code: pending), count: count)
        }
        return batch
    }

    /// The message opaque for record `index`.
    func opaque(forRecordAt index: Int) -> UnsafeMutableRawPointer {
        withUnsafeMutablePointerToElements { UnsafeMutableRawPointer($0 + index) }
    }

    /// The code of record `index`; only meaningful after ``waitForAll()`` returned (or after teardown).
    func code(ofRecordAt index: Int) -> Int32 {
        withUnsafeMutablePointerToElements { $0[index].code }
    }

    /// Completes the slot behind a message opaque: called from the delivery-report callback.
    static func complete(opaque: UnsafeMutableRawPointer, code: Int32) {
        let slot = opaque.assumingMemoryBound(to: DeliverySlot.self)
        let batch = Unmanaged<DeliveryBatch>.fromOpaque(slot.pointee.batch).takeUnretainedValue()
        slot.pointee.code = code
        batch.arrive()
    }

    /// Completes record `index` without a delivery report (a local failure: it was never enqueued).
    func completeLocally(recordAt index: Int, code: Int32) {
        withUnsafeMutablePointerToElements { $0[index].code = code }
        arrive()
    }

    /// Completes every slot still pending with `code`. Only safe once no delivery report can arrive any more
    /// (after `rd_kafka_destroy`).
    func completeAllPending(code: Int32) {
        for index in 0..<header.count where self.code(ofRecordAt: index) == Self.pending {
            completeLocally(recordAt: index, code: code)
        }
    }

    /// Called by the sender once it stopped enqueueing: stores the continuation, releases the hold, and returns
    /// when every slot has completed.
    func waitForAll() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            header.continuation = continuation
            arrive()
        }
    }

    private func arrive() {
        let left = withUnsafeMutablePointerToHeader { header in
            let remaining = UnsafeMutableRawPointer(header)
                .advanced(by: MemoryLayout<DeliveryBatchHeader>.offset(of: \.remaining)!)
                .assumingMemoryBound(to: Int64.self)
            return outbox_atomic_sub_fetch_i64(remaining, 1)
        }
        if left == 0 {
            header.continuation!.resume()
        }
    }
}
