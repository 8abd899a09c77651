import CRdKafka
import Logging

/// The relay's Kafka producer: idempotent, `acks=all`, one async call per batch of records.
///
/// ``send(_:)`` enqueues every record into librdkafka and returns when every delivery report is in, one result
/// per record in order. It never throws: each failure carries a ``DeliveryFailureClass`` that tells the relay
/// whether to pause (outage), retry (retriable) or dead-letter (permanent).
///
/// **Fatal errors.** An idempotent producer can hit a fatal error (e.g. the broker lost its producer state in a
/// way that would break ordering guarantees). librdkafka then fails every record with `_FATAL` (outage class), logs
/// nothing by itself; we log it once at critical level and expose it as ``fatalError``. The handle cannot recover:
/// the relay should ``close(flushTimeout:)`` this producer and create a new one (its rows were not deleted, so
/// they are published again).
///
/// Thread-safety: all methods may be called concurrently from any task.
public final class KafkaProducer: Sendable {
    public let configuration: KafkaProducerConfiguration
    let handle: KafkaProducerHandle
    let logger: Logger

    public init(configuration: KafkaProducerConfiguration, logger: Logger) throws(KafkaClientError) {
        try Librdkafka.requireSupportedVersion()
        let properties = configuration.librdkafkaProperties
        let conf = try KafkaConf.make(properties, forbidden: KafkaProducerConfiguration.forbiddenProperties)

        let context = KafkaClientContext(logger: logger)
        let opaque = context.install(on: conf)
        // Runs on the poll thread (inside rd_kafka_poll/rd_kafka_flush): completes the record's slot.
        rd_kafka_conf_set_dr_msg_cb(conf.pointer) { _, message, _ in
            guard let message, let opaque = message.pointee._private else { return }
            DeliveryBatch.complete(opaque: opaque, code: message.pointee.err.rawValue, partition: message.pointee.partition)
        }

        var errstr = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.pointer, &errstr, errstr.count) else {
            conf.destroy()  // rd_kafka_new only takes ownership on success
            KafkaClientContext.release(opaque)
            throw .creationFailed(reason: errstr.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        self.configuration = configuration
        self.logger = logger
        self.handle = KafkaProducerHandle(rk: rk, context: context, opaque: opaque, logger: logger)
        handle.startPolling()

        for guarantee in ["acks", "enable.idempotence"] {
            if let value = configuration.properties[guarantee] {
                logger.warning(
                    "Kafka producer default overridden: the relay's no-loss and ordering guarantees assume acks=all and enable.idempotence=true",
                    metadata: ["kafka.property": "\(guarantee)", "kafka.value": "\(value)"]
                )
            }
        }
        logger.info(
            "Kafka producer created",
            metadata: [
                "kafka.librdkafka": "\(Librdkafka.versionString)",
                "kafka.bootstrapServers": "\(configuration.bootstrapServers)",
                "kafka.properties": "\(KafkaSecretProperties.describe(properties))",
            ]
        )
    }

    deinit {
        // close() was not called: tear down in the background without waiting for outstanding deliveries.
        // (No send can be waiting: a running send keeps `self` alive.)
        handle.requestClose(flushTimeout: .zero)
    }

    /// The fatal error that made this producer unusable, if one happened: recreate the producer.
    public var fatalError: DeliveryError? { handle.context.fatalError }

    /// The latest client-level error (a broker address that does not resolve, a refused
    /// connection, an authentication failure), for saying why the broker cannot be reached.
    public var lastClientError: String? { handle.context.lastClientError }

    /// Produces all records and returns once every delivery report is in, one result per record in
    /// the same order, giving up ``KafkaProducerConfiguration/messageTimeout`` after the call.
    /// See ``send(_:until:abandonWhen:)``.
    public func send(_ records: [KafkaRecord]) async -> [Result<Void, DeliveryError>] {
        await send(records, until: .now + configuration.messageTimeout, abandonWhen: { nil }).results.map { $0! }
    }

    /// Produces all records and returns once every delivery report is in, one result per record in
    /// the same order. Never throws: failures are per record.
    ///
    /// **Giving up without gaps.** librdkafka's own delivery timeout fails queued records one by one
    /// by their enqueue time and then writes the ones behind them when the broker is back ("1, 4, 5"
    /// in its INTRODUCTION.md): a later message of a key published, an earlier one failed. So
    /// librdkafka is configured never to time out first (``KafkaProducerConfiguration/librdkafkaMessageTimeout``);
    /// the relay gives up itself, once `deadline` passes or `abandonWhen` names a reason (checked
    /// every 100 ms: a lane lease running out), by purging everything still queued or in flight in
    /// one step (`rd_kafka_purge`) and enqueueing nothing more. Per partition what was delivered is
    /// then a prefix of what was sent, and everything after it failed (`_PURGE_QUEUE`,
    /// `_PURGE_INFLIGHT`, or not enqueued: all outage class). A purged in-flight request may still
    /// be appended by the broker; it is the next one after the delivered prefix, so that is a
    /// duplicate, not a reorder (the idempotent producer's sequence numbers refuse a later request
    /// without the earlier one).
    ///
    /// The purge covers the whole producer, which is right for the relay: it has one batch in
    /// flight at a time, and this is that batch (plus the stragglers of earlier ones, which the
    /// purge then fails too; they are published again in order).
    ///
    /// **Stragglers.** With a ``StragglerPolicy`` the call may return before every report is in:
    /// the records still outstanding stay in flight (not purged) and come back as
    /// ``SendReport/outstanding``, which keeps watching `abandonWhen` (and purges if it names a
    /// reason, or once ``KafkaProducerConfiguration/stragglerTimeout`` has passed since the call)
    /// until their reports are in. Their `results` entries are nil.
    ///
    /// - A full local queue (`_QUEUE_FULL`) does not fail a record: the call waits (1 ms steps) and retries,
    ///   unless the task is cancelled or the producer is closing, in which case the records not yet enqueued fail
    ///   with an outage class (already enqueued ones are still awaited: their outcome is real).
    /// - Local failures (invalid topic name → `TOPIC_EXCEPTION`, larger than `message.max.bytes` →
    ///   `MSG_SIZE_TOO_LARGE`, fatal producer → `_FATAL`) become that record's failure; the others proceed.
    /// - After ``close(flushTimeout:)`` every record fails with `_DESTROY` (outage).
    public func send(
        _ records: [KafkaRecord], until deadline: ContinuousClock.Instant, stragglers: StragglerPolicy? = nil,
        abandonWhen: @escaping @Sendable () -> String?
    ) async -> SendReport {
        if records.isEmpty { return SendReport(results: [], gaveUp: nil) }
        let batch = DeliveryBatch.make(count: records.count)
        let enqueued = ContinuousClock.now
        guard let rk = handle.beginSend(batch) else {
            let error = DeliveryError(code: RD_KAFKA_RESP_ERR__DESTROY.rawValue, context: "the producer is closed")
            return SendReport(results: Array(repeating: .failure(error), count: records.count), gaveUp: nil)
        }
        let timeout = configuration.messageTimeout
        @Sendable func reasonToGiveUp() -> SendReport.GaveUp? {
            if ContinuousClock.now >= deadline { return .deliveryTimeout(timeout) }
            return abandonWhen().map(SendReport.GaveUp.abandoned)
        }
        var gaveUp: SendReport.GaveUp?
        // Rare path only: messages of records that failed before reaching librdkafka's queue.
        var localErrors: [Int: DeliveryError] = [:]
        func failLocally(_ index: Int, _ code: rd_kafka_resp_err_t, _ context: String) {
            localErrors[index] = DeliveryError(code: code.rawValue, context: context)
            batch.completeLocally(recordAt: index, code: code.rawValue)
        }

        var lastValidTopic: String?
        var index = 0
        while index < records.count {
            let record = records[index]
            if record.topic != lastValidTopic {
                if let problem = KafkaTopicName.problem(with: record.topic) {
                    failLocally(index, RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION, "rejected before producing: \(problem)")
                    index += 1
                    continue
                }
                lastValidTopic = record.topic
            }
            let code = Self.produce(record, on: rk, opaque: batch.opaque(forRecordAt: index))
            switch code {
            case RD_KAFKA_RESP_ERR_NO_ERROR:
                index += 1
            case RD_KAFKA_RESP_ERR__QUEUE_FULL:
                let closing = handle.isClosing
                let giveUp = closing || Task.isCancelled ? nil : reasonToGiveUp()
                if closing || Task.isCancelled || giveUp != nil {
                    let why = closing ? "the producer is closing" : giveUp.map(\.description) ?? "the sending task was cancelled"
                    let code = closing ? RD_KAFKA_RESP_ERR__DESTROY : giveUp != nil ? RD_KAFKA_RESP_ERR__PURGE_QUEUE : RD_KAFKA_RESP_ERR__QUEUE_FULL
                    for rest in index..<records.count {
                        failLocally(rest, code, "not enqueued: the local queue was full and \(why)")
                    }
                    index = records.count
                    if let giveUp {
                        // What is queued ahead of the records left out goes too: no gap.
                        gaveUp = giveUp
                        KafkaProducerHandle.purgeAll(rk.raw)
                    }
                } else {
                    // Delivery reports free room; the poll thread serves them meanwhile.
                    try? await Task.sleep(for: .milliseconds(1))
                }
            case RD_KAFKA_RESP_ERR__FATAL:
                let detail = handle.context.fatalError?.message ?? "the idempotent producer hit a fatal error"
                failLocally(index, code, "\(detail); recreate the producer")
                index += 1
            default:
                failLocally(index, code, "local produce error for topic \"\(record.topic)\", \(record.value.count) value bytes")
                index += 1
            }
        }
        handle.endUse()
        batch.finishEnqueueing()

        let reported = records.count - localErrors.count  // records whose delivery report is awaited
        let progress = batch.progress
        @Sendable func stragglersNow() -> Bool {
            guard let stragglers, let latest = progress.latestReport else { return false }
            let outstanding = reported - progress.reportCount
            return outstanding > 0 && outstanding <= stragglers.budget && ContinuousClock.now - latest >= stragglers.grace
        }
        // The batch's one watcher, checking every 100 ms until the batch completes: it gives up
        // (purging) at the deadline or the caller's reason, and wakes the sender early (through
        // `batch.wake`) once only stragglers are left. From then on it watches them for the
        // ``OutstandingDeliveries`` that owns it, with the straggler timeout as the deadline.
        // Unstructured because it may outlive this call; returns why it purged, if it did.
        let stragglerDeadline = enqueued + configuration.stragglerTimeout
        let watcher: Task<SendReport.GaveUp?, Never>? =
            gaveUp != nil ? nil
            : Task { [self, shared = SharedDeliveryBatch(batch: batch)] in
                let batch = shared.batch
                var returnedEarly = false
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(100))
                    if Task.isCancelled || batch.isComplete { return nil }
                    let reason: SendReport.GaveUp? =
                        !returnedEarly ? reasonToGiveUp()
                        : ContinuousClock.now >= stragglerDeadline
                            ? .abandoned("no delivery report within \(configuration.stragglerTimeout)")
                            : abandonWhen().map(SendReport.GaveUp.abandoned)
                    if let reason {
                        return purgeOutstanding() ? reason : nil
                    }
                    if !returnedEarly, stragglersNow() {
                        returnedEarly = true
                        batch.wake.finish(.success(()))
                    }
                }
                return nil
            }
        try? await batch.wake.value()
        if !batch.isComplete, let watcher {
            // Woken by the watcher for stragglers: the rest stays in flight, followed by the caller.
            let results = results(of: batch, records: records, localErrors: localErrors)
            let indices = results.indices.filter { results[$0] == nil }
            if !indices.isEmpty {
                let outstanding = OutstandingDeliveries(
                    producer: self, batch: batch, indices: indices, topics: indices.map { records[$0].topic }, watcher: watcher)
                return SendReport(
                    results: results, gaveUp: nil, outstanding: outstanding, partitions: partitions(of: batch, count: records.count))
            }
            try? await batch.completion.value()  // every report arrived meanwhile
        }
        watcher?.cancel()
        if let reason = await watcher?.value { gaveUp = reason }
        handle.unregister(batch)
        let results = results(of: batch, records: records, localErrors: localErrors)
        if let reason = gaveUp, results.contains(where: { if case .failure? = $0 { true } else { false } }) {
            logger.warning(
                "gave up waiting for delivery reports; purged what was still queued or in flight",
                metadata: ["reason": "\(reason)"])
            return SendReport(results: results, gaveUp: reason, partitions: partitions(of: batch, count: records.count))
        }
        return SendReport(results: results, gaveUp: nil, partitions: partitions(of: batch, count: records.count))
    }

    /// Purges everything this producer still holds (see ``KafkaProducerHandle/purgeAll(_:)``);
    /// false once closed.
    @discardableResult
    func purgeOutstanding() -> Bool {
        guard let rk = handle.beginUse() else { return false }
        KafkaProducerHandle.purgeAll(rk.raw)
        handle.endUse()
        return true
    }

    /// Cheap reachability probe (metadata request with a short timeout): used to wait out a broker outage.
    /// Runs on a thread of its own, never on the cooperative pool. `false` when closed.
    public func brokerIsReachable(timeout: Duration) async -> Bool {
        guard let rk = handle.beginUse() else { return false }
        let milliseconds = KafkaProducerHandle.timeoutMilliseconds(timeout)
        let reachable = await KafkaDedicatedThread.run(name: "kafka-probe") { () -> Bool in
            var metadata: UnsafePointer<rd_kafka_metadata>?
            // all_topics = 0, no topic: a cheap request for brokers (and locally known topics only).
            let err = rd_kafka_metadata(rk.raw, 0, nil, &metadata, milliseconds)
            if let metadata { rd_kafka_metadata_destroy(metadata) }
            return err == RD_KAFKA_RESP_ERR_NO_ERROR
        }
        handle.endUse()
        return reachable
    }

    /// Records and requests librdkafka still holds (queued, in flight, or awaiting their delivery
    /// report): `rd_kafka_outq_len`, a cheap counter read, for the queue-depth gauge. 0 once closed.
    public var outstandingCount: Int {
        guard let rk = handle.beginUse() else { return 0 }
        defer { handle.endUse() }
        return Int(rd_kafka_outq_len(rk.raw))
    }

    /// Waits for outstanding deliveries (at most `flushTimeout`; what is left then fails with an outage class),
    /// then destroys the handle. Idempotent: later or concurrent calls wait for the same teardown.
    public func close(flushTimeout: Duration) async {
        await handle.close(flushTimeout: flushTimeout)
    }

    /// Makes librdkafka raise a fatal error on this producer (`rd_kafka_test_fatal_error`), as an idempotent
    /// producer does when the broker's state breaks its guarantees. For tests of the fatal path only.
    func simulateFatalErrorForTesting(code: Int32, reason: String) {
        guard let rk = handle.beginUse() else { return }
        _ = rd_kafka_test_fatal_error(rk.raw, rd_kafka_resp_err_t(rawValue: code), reason)
        handle.endUse()
    }

    // MARK: -

    /// Enqueues one record. librdkafka copies key, value and headers, so nothing here outlives the call.
    private static func produce(_ record: KafkaRecord, on rk: KafkaHandlePointer, opaque: UnsafeMutableRawPointer) -> rd_kafka_resp_err_t {
        var headers: OpaquePointer?
        if !record.headers.isEmpty {
            headers = rd_kafka_headers_new(record.headers.count)
            for header in record.headers {
                addHeader(header, to: headers!)
            }
        }
        let code = record.topic.withCString { topic in
            record.value.withUnsafeBytes { value in
                if let key = record.key {
                    return key.withUnsafeBytes { key in
                        outbox_rd_kafka_produce(rk.raw, topic, 1, key.baseAddress, key.count,
                                                value.baseAddress, value.count, headers, opaque)
                    }
                }
                return outbox_rd_kafka_produce(rk.raw, topic, 0, nil, 0, value.baseAddress, value.count, headers, opaque)
            }
        }
        if code != RD_KAFKA_RESP_ERR_NO_ERROR, let headers {
            rd_kafka_headers_destroy(headers)  // ownership only passes to librdkafka on success
        }
        return code
    }

    private static func addHeader(_ header: KafkaHeader, to headers: OpaquePointer) {
        var empty: UInt8 = 0
        header.name.withCString { name in
            header.value.withUnsafeBytes { value in
                if let base = value.baseAddress {
                    _ = rd_kafka_header_add(headers, name, -1, base, value.count)
                } else {
                    // An empty (not null) value: librdkafka treats a NULL pointer as a null header value.
                    _ = rd_kafka_header_add(headers, name, -1, &empty, 0)
                }
            }
        }
    }

    private func partitions(of batch: DeliveryBatch, count: Int) -> [Int32?] {
        (0..<count).map { batch.partition(ofRecordAt: $0) }
    }

    private func results(
        of batch: DeliveryBatch,
        records: [KafkaRecord],
        localErrors: [Int: DeliveryError]
    ) -> [Result<Void, DeliveryError>?] {
        var results: [Result<Void, DeliveryError>?] = []
        results.reserveCapacity(records.count)
        for index in records.indices {
            let code = batch.code(ofRecordAt: index)
            if code == DeliveryBatch.pending {
                results.append(nil)
            } else if code == RD_KAFKA_RESP_ERR_NO_ERROR.rawValue {
                results.append(.success(()))
            } else if let local = localErrors[index] {
                results.append(.failure(local))
            } else {
                results.append(.failure(deliveryError(code: code, topic: records[index].topic)))
            }
        }
        return results
    }

    /// The error of a failed delivery report, with a hint for the codes whose cause is not obvious.
    func deliveryError(code: Int32, topic: String) -> DeliveryError {
        var context = "delivery report for topic \"\(topic)\""
        switch rd_kafka_resp_err_t(rawValue: code) {
        case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
            context += "; not acknowledged within message.timeout.ms (\(configuration.messageTimeout)): is the broker reachable?"
        case RD_KAFKA_RESP_ERR__FATAL:
            context += "; \(handle.context.fatalError?.message ?? "fatal producer error"); recreate the producer"
        case RD_KAFKA_RESP_ERR__PURGE_QUEUE, RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
            context += "; given up before the broker acknowledged it (purged)"
        case RD_KAFKA_RESP_ERR__DESTROY:
            context += "; the producer was closed before the broker acknowledged it"
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
            // The record passed the local `message.max.bytes` check, so the broker refused the produce
            // request carrying it: its limit is below what this producer batches. Usually not the
            // record's fault, so not poison at once: retried (attempts bound it) with the fix named.
            context += "; the broker refused the produce request carrying it as too large: its max.message.bytes is"
                + " below this producer's batches; set the kafka properties batch.size and message.max.bytes at or"
                + " below the broker's limit"
            var error = DeliveryError(code: code, context: context)
            error.failureClass = .retriable
            return error
        default:
            break
        }
        return DeliveryError(code: code, context: context)
    }
}
