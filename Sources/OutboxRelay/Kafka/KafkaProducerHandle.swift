import CRdKafka
import Logging

/// Owns a producer's `rd_kafka_t` and the one thread that serves it.
///
/// **Why a dedicated poll thread.** Delivery reports are served by `rd_kafka_poll`, which blocks; running it on
/// Swift's cooperative pool would take one of its (here: two) threads away. librdkafka's own background thread
/// (`rd_kafka_conf_set_background_event_cb`) does *not* serve delivery reports — it only serves queues that are
/// explicitly passed to it (Admin API results); verified with librdkafka 2.16: with the background callback and
/// `RD_KAFKA_EVENT_DR` enabled, no delivery report arrived and `rd_kafka_flush` timed out. So one plain thread per
/// producer loops on `rd_kafka_poll`, which returns as soon as reports are ready (no added latency); the
/// `dr_msg_cb` it triggers completes ``DeliveryBatch`` slots.
///
/// **Lifecycle.** `open` → `closing` (requested by ``KafkaProducer/close(flushTimeout:)`` or `deinit`) → `closed`.
/// The poll thread performs the teardown itself once no caller is inside librdkafka any more (`users == 0`):
/// flush (bounded), purge what is left (those records fail with `_PURGE_*`, an outage class), destroy the handle,
/// fail anything still unreported with `_DESTROY`, release the callback context, and wake the `close` callers.
/// Doing it on the poll thread means no join and no blocking of the caller's task.
final class KafkaProducerHandle: Sendable {
    private enum Phase {
        case open
        case closing(flushTimeout: Duration)
        case closed
    }

    private struct State {
        var phase: Phase = .open
        /// Callers currently using the `rd_kafka_t` outside the poll thread (enqueueing, metadata probes).
        var users = 0
        /// Batches waiting for delivery reports, so teardown can complete them if librdkafka never reports.
        var batches: [ObjectIdentifier: DeliveryBatch] = [:]
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let handle: KafkaHandlePointer
    let context: KafkaClientContext
    private let opaque: KafkaOpaque
    private let state = KafkaLocked(State())
    private let logger: Logger

    /// The retained ``KafkaClientContext`` pointer given to librdkafka as `opaque`.
    private struct KafkaOpaque: @unchecked Sendable { let raw: UnsafeMutableRawPointer }

    init(rk: OpaquePointer, context: KafkaClientContext, opaque: UnsafeMutableRawPointer, logger: Logger) {
        self.handle = KafkaHandlePointer(raw: rk)
        self.context = context
        self.opaque = KafkaOpaque(raw: opaque)
        self.logger = logger
    }

    /// Starts the poll thread. Call once, right after `init`.
    func startPolling() {
        KafkaDedicatedThread.start(name: "kafka-producer-poll") { [self] in
            self.pollLoop()
        }
    }

    // MARK: Users

    /// Enters librdkafka for a send; registers `batch` for teardown. `nil` once closing.
    func beginSend(_ batch: DeliveryBatch) -> KafkaHandlePointer? {
        state.withLock { state in
            guard case .open = state.phase else { return nil }
            state.users += 1
            state.batches[ObjectIdentifier(batch)] = batch
            return handle
        }
    }

    /// Enters librdkafka for something else (a metadata probe). `nil` once closing.
    func beginUse() -> KafkaHandlePointer? {
        state.withLock { state in
            guard case .open = state.phase else { return nil }
            state.users += 1
            return handle
        }
    }

    /// Leaves librdkafka (balances `beginSend`/`beginUse`).
    func endUse() {
        state.withLock { $0.users -= 1 }
    }

    /// Forgets a batch whose every record completed.
    func unregister(_ batch: DeliveryBatch) {
        _ = state.withLock { $0.batches.removeValue(forKey: ObjectIdentifier(batch)) }
    }

    /// Whether close was requested (a sender stuck on `_QUEUE_FULL` gives up then).
    var isClosing: Bool {
        state.withLock { state in
            if case .open = state.phase { return false }
            return true
        }
    }

    // MARK: Closing

    /// Requests teardown and returns once it is done. Safe to call any number of times, concurrently.
    func close(flushTimeout: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                switch state.phase {
                case .open:
                    state.phase = .closing(flushTimeout: flushTimeout)
                    state.closeWaiters.append(continuation)
                    // Non-blocking; wakes the poll thread. The handle is alive: teardown has not started.
                    rd_kafka_yield(handle.raw)
                    return false
                case .closing:
                    state.closeWaiters.append(continuation)
                    return false
                case .closed:
                    return true
                }
            }
            if done { continuation.resume() }
        }
    }

    /// Requests teardown without waiting (from `KafkaProducer.deinit`).
    func requestClose(flushTimeout: Duration) {
        state.withLock { state in
            guard case .open = state.phase else { return }
            state.phase = .closing(flushTimeout: flushTimeout)
            rd_kafka_yield(handle.raw)
        }
    }

    // MARK: Poll thread

    private func pollLoop() {
        let rk = handle.raw
        var flushTimeout: Duration
        while true {
            rd_kafka_poll(rk, 100)
            let request = state.withLock { state -> Duration? in
                guard case .closing(let timeout) = state.phase, state.users == 0 else { return nil }
                return timeout
            }
            if let request {
                flushTimeout = request
                break
            }
        }
        teardown(rk: rk, flushTimeout: flushTimeout)
    }

    private func teardown(rk: OpaquePointer, flushTimeout: Duration) {
        // Serves delivery reports on this thread while waiting (callback mode).
        let flushed = rd_kafka_flush(rk, Self.timeoutMilliseconds(flushTimeout))
        if flushed != RD_KAFKA_RESP_ERR_NO_ERROR {
            let outstanding = rd_kafka_outq_len(rk)
            logger.warning(
                "Kafka producer closing with deliveries outstanding after the flush timeout; purging them (they fail as outage and will be published again)",
                metadata: ["kafka.outstanding": "\(outstanding)", "kafka.flushTimeout": "\(flushTimeout)"]
            )
            Self.purgeAll(rk)
            // Serve the purged records' delivery reports.
            _ = rd_kafka_flush(rk, 2_000)
        }
        rd_kafka_destroy(rk)
        KafkaClientContext.release(opaque.raw)

        let (batches, waiters) = state.withLock { state in
            state.phase = .closed
            defer {
                state.batches = [:]
                state.closeWaiters = []
            }
            return (Array(state.batches.values), state.closeWaiters)
        }
        // No delivery report can arrive after rd_kafka_destroy: fail what librdkafka never reported.
        for batch in batches {
            batch.completeAllPending(code: RD_KAFKA_RESP_ERR__DESTROY.rawValue)
        }
        logger.debug("Kafka producer closed")
        for waiter in waiters {
            waiter.resume()
        }
    }

    /// Fails every record still queued or in flight, at once (`_PURGE_QUEUE`, `_PURGE_INFLIGHT`);
    /// their delivery reports follow on the poll thread. Blocks only while librdkafka empties its
    /// internal queues. The one purge of the relay: a send giving up, stragglers given up, teardown.
    static func purgeAll(_ rk: OpaquePointer) {
        _ = rd_kafka_purge(rk, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
    }

    /// `Duration` → milliseconds for librdkafka timeouts (0 allowed: "do not wait").
    static func timeoutMilliseconds(_ duration: Duration) -> Int32 {
        Int32(clamping: max(0, duration.milliseconds))
    }
}
