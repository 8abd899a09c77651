import CRdKafka
import Synchronization

/// One slot per record of a ``DeliveryBatch``; a slot's address is that record's librdkafka message opaque
/// (`rd_kafka_message_t._private`), which is how a delivery report finds its record without any per-message
/// allocation on our side.
struct DeliverySlot {
    /// The batch the slot belongs to, unretained: the sending side keeps the batch alive until every slot has
    /// completed, and no slot is touched after its completion.
    var batch: UnsafeMutableRawPointer
    /// ``DeliveryBatch/pending`` until completed, then the `rd_kafka_resp_err_t` raw value (0 = delivered).
    /// Written and read atomically only (`outbox_atomic_*_i32`): a send that returns early with
    /// stragglers reads the codes that are in while the poll thread still writes others.
    var code: Int32
    /// The partition the record went to, per its delivery report (-1 before, or without one).
    /// Written before `code`, whose release store publishes it to a reader that saw the code.
    var partition: Int32
}

/// How far a batch's delivery reports have come (reports only, not records failed locally before reaching
/// librdkafka), readable from any thread while they arrive: tells records stuck on one partition (the rest
/// of the batch long delivered) from a broker that answers nothing.
final class DeliveryProgress: Sendable {
    private let started = ContinuousClock.now
    private let completed = Atomic<Int>(0)
    /// Nanoseconds after `started` of the latest report.
    private let latest = Atomic<Int64>(0)

    func recordReport() {
        let elapsed = ContinuousClock.now - started
        latest.store(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000, ordering: .relaxed)
        completed.add(1, ordering: .releasing)
    }

    var reportCount: Int { completed.load(ordering: .acquiring) }

    /// When the latest report arrived (nil before the first).
    var latestReport: ContinuousClock.Instant? {
        reportCount == 0 ? nil : started + .nanoseconds(latest.load(ordering: .relaxed))
    }
}

struct DeliveryBatchHeader {
    /// Slots not yet completed, plus one "hold" owned by the sender until it finished enqueueing. Only changed
    /// through `outbox_atomic_sub_fetch_i64`.
    var remaining: Int64
    let count: Int
    /// The fields below are never reassigned after creation, so any thread may read them while `remaining`
    /// changes (each is read through its own field offset, never through the whole header).
    let progress: DeliveryProgress
    /// Finished once every slot has completed (by whoever brings ``remaining`` to zero).
    let completion: AbandonableCall<Void>
    /// What the sender waits on: finished at completion, or earlier by its watcher (a give-up or stragglers).
    let wake: AbandonableCall<Void>
}

/// The delivery state of one ``KafkaProducer/send(_:)`` call: a header and a slot per record in a single
/// allocation (`ManagedBuffer`), completed from librdkafka's delivery-report callback on the poll thread and
/// from the sender for local failures.
///
/// Completion protocol: each slot is completed exactly once (code stored with release ordering, then
/// `remaining` decremented with acquire-release ordering); the sender additionally releases its hold once.
/// Exactly one party sees `remaining` reach zero and finishes ``completion`` (and ``wake``), after which
/// every code is final.
///
final class DeliveryBatch: ManagedBuffer<DeliveryBatchHeader, DeliverySlot> {
    /// The code of a slot whose delivery report has not arrived yet.
    static let pending = Int32.min

    static func make(count: Int) -> DeliveryBatch {
        let buffer = create(minimumCapacity: count) { _ in
            DeliveryBatchHeader(
                remaining: Int64(count) + 1, count: count, progress: DeliveryProgress(), completion: AbandonableCall(),
                wake: AbandonableCall())
        }
        let batch = unsafeDowncast(buffer, to: DeliveryBatch.self)
        let unretained = Unmanaged.passUnretained(batch).toOpaque()
        batch.withUnsafeMutablePointerToElements { slots in
            slots.initialize(repeating: DeliverySlot(batch: unretained, code: pending, partition: -1), count: count)
        }
        return batch
    }

    private func field<T>(_ path: KeyPath<DeliveryBatchHeader, T>) -> T {
        withUnsafeMutablePointerToHeader { header in
            UnsafeMutableRawPointer(header).advanced(by: MemoryLayout<DeliveryBatchHeader>.offset(of: path)!)
                .assumingMemoryBound(to: T.self).pointee
        }
    }

    var progress: DeliveryProgress { field(\.progress) }
    var completion: AbandonableCall<Void> { field(\.completion) }
    var wake: AbandonableCall<Void> { field(\.wake) }
    var isComplete: Bool { !completion.isPending }

    /// The message opaque for record `index`.
    func opaque(forRecordAt index: Int) -> UnsafeMutableRawPointer {
        withUnsafeMutablePointerToElements { UnsafeMutableRawPointer($0 + index) }
    }

    /// The code of record `index`, ``pending`` while its report has not arrived.
    func code(ofRecordAt index: Int) -> Int32 {
        withUnsafeMutablePointerToElements { outbox_atomic_load_i32(&$0[index].code) }
    }

    /// The partition of record `index` once its report is in (nil before, or for a local failure).
    func partition(ofRecordAt index: Int) -> Int32? {
        guard code(ofRecordAt: index) != Self.pending else { return nil }
        let partition = withUnsafeMutablePointerToElements { $0[index].partition }
        return partition >= 0 ? partition : nil
    }

    /// Completes the slot behind a message opaque: called from the delivery-report callback.
    static func complete(opaque: UnsafeMutableRawPointer, code: Int32, partition: Int32) {
        let slot = opaque.assumingMemoryBound(to: DeliverySlot.self)
        let batch = Unmanaged<DeliveryBatch>.fromOpaque(slot.pointee.batch).takeUnretainedValue()
        slot.pointee.partition = partition
        outbox_atomic_store_i32(&slot.pointee.code, code)
        batch.progress.recordReport()
        batch.arrive()
    }

    /// Completes record `index` without a delivery report (a local failure: it was never enqueued).
    func completeLocally(recordAt index: Int, code: Int32) {
        withUnsafeMutablePointerToElements { outbox_atomic_store_i32(&$0[index].code, code) }
        arrive()
    }

    /// Completes every slot still pending with `code`. Only safe once no delivery report can arrive any more
    /// (after `rd_kafka_destroy`).
    func completeAllPending(code: Int32) {
        for index in 0..<field(\.count) where self.code(ofRecordAt: index) == Self.pending {
            completeLocally(recordAt: index, code: code)
        }
    }

    /// Called by the sender once it stopped enqueueing: releases its hold.
    func finishEnqueueing() {
        arrive()
    }

    private func arrive() {
        let left = withUnsafeMutablePointerToHeader { header in
            let remaining = UnsafeMutableRawPointer(header)
                .advanced(by: MemoryLayout<DeliveryBatchHeader>.offset(of: \.remaining)!)
                .assumingMemoryBound(to: Int64.self)
            return outbox_atomic_sub_fetch_i64(remaining, 1)
        }
        if left == 0 {
            completion.finish(.success(()))
            wake.finish(.success(()))
        }
    }
}

/// A ``DeliveryBatch`` handed across tasks: a send's watcher, and ``OutstandingDeliveries`` awaited from
/// another task than the send's. `@unchecked` because `ManagedBuffer` cannot be `Sendable`; everything
/// shared is atomic or never reassigned (see ``DeliveryBatchHeader``) and slot codes are accessed
/// atomically.
struct SharedDeliveryBatch: @unchecked Sendable {
    let batch: DeliveryBatch
}
