import CRdKafka
import Foundation
import Logging

/// One record read back from Kafka.
public struct ConsumedRecord: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    /// Milliseconds since the epoch (create or log-append time), when the broker reported one.
    public var timestamp: Int64?

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8],
                headers: [KafkaHeader], timestamp: Int64?) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }
}

/// Reads every partition of a topic from offset 0 to the end (partition EOF), without a consumer group.
/// Used by tests, the demo (`outbox-relay peek`) and the load test's ledger.
///
/// Built around Tansu's quirks (see ENVIRONMENT.md): its ListOffsets answers are unreliable ("earliest" has
/// answered 157 for a partition starting at 0), so nothing here asks for offsets: each partition is assigned
/// at the explicit offset 0 and read until librdkafka reports partition EOF (`enable.partition.eof=true`).
/// Partitions are assigned directly (no group join, which takes half of `session.timeout.ms` on Tansu); the
/// random `group.id` only exists because librdkafka's consumer poll API requires one, and nothing is committed.
///
/// The whole read runs on a thread of its own (it blocks in `rd_kafka_consumer_poll`).
public enum KafkaTopicReader {
    public static func readAll(
        topic: String,
        bootstrapServers: String,
        properties: [String: String] = [:],
        timeout: Duration,
        logger: Logger
    ) async throws(KafkaClientError) -> [ConsumedRecord] {
        try Librdkafka.requireSupportedVersion()
        let settings = readerSettings(bootstrapServers: bootstrapServers, properties: properties, partitionEOF: true)
        let deadline = ContinuousClock.now + timeout
        let finalSettings = settings
        return try await KafkaDedicatedThread.run(name: "kafka-topic-reader") { () throws(KafkaClientError) -> [ConsumedRecord] in
            var records: [ConsumedRecord] = []
            try read(
                topic: topic, settings: finalSettings, deadline: deadline, untilEnd: true, logger: logger,
                shouldStop: { false }, onRecord: { records.append($0) })
            return records
        }
    }

    /// Follows `topic` from offset 0 of every partition, handing every record to `onRecord` on the
    /// reader's own thread as soon as it arrives, until `shouldStop` says so (asked at least every
    /// 100 ms) — a consumer for latency measurements. The topic must exist within `waitForTopic`.
    public static func follow(
        topic: String,
        bootstrapServers: String,
        properties: [String: String] = [:],
        waitForTopic: Duration,
        logger: Logger,
        shouldStop: @escaping @Sendable () -> Bool,
        onRecord: @escaping @Sendable (ConsumedRecord) -> Void
    ) async throws(KafkaClientError) {
        try Librdkafka.requireSupportedVersion()
        let settings = readerSettings(bootstrapServers: bootstrapServers, properties: properties, partitionEOF: false)
        let deadline = ContinuousClock.now + waitForTopic
        try await KafkaDedicatedThread.run(name: "kafka-topic-follower") { () throws(KafkaClientError) -> Void in
            try read(
                topic: topic, settings: settings, deadline: deadline, untilEnd: false, logger: logger,
                shouldStop: shouldStop, onRecord: onRecord)
        }
    }

    private static func readerSettings(
        bootstrapServers: String, properties: [String: String], partitionEOF: Bool
    ) -> [(name: String, value: String)] {
        var settings: [(name: String, value: String)] = [
            ("bootstrap.servers", bootstrapServers),
            ("group.id", "outbox-relay-reader-\(UInt64.random(in: 0...UInt64.max))"),
            ("enable.partition.eof", partitionEOF ? "true" : "false"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "error"),
            ("log.connection.close", "false"),
            ("client.id", "outbox-relay-reader"),
        ]
        if !partitionEOF {
            // A follower measures latency. Some brokers (Tansu) answer a fetch only when its wait is
            // over, not when data arrives, so the wait bounds the consumer's share of the latency:
            // 5 ms (2 ms made the broker spend 45 % of a core on fetches at 2,000 msg/s). Never back
            // off half a second after a fetch the broker answered with an error.
            settings += [("fetch.wait.max.ms", "5"), ("fetch.error.backoff.ms", "5")]
        }
        settings += properties.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
        return settings
    }

    /// Reads `topic` from offset 0 of every partition. With `untilEnd` it returns once every
    /// partition reached its end (and fails at `deadline`); otherwise `deadline` bounds only the
    /// wait for the topic, and it returns when `shouldStop` says so.
    private static func read(
        topic: String,
        settings: [(name: String, value: String)],
        deadline: ContinuousClock.Instant,
        untilEnd: Bool,
        logger: Logger,
        shouldStop: () -> Bool,
        onRecord: (ConsumedRecord) -> Void
    ) throws(KafkaClientError) {
        let conf = try KafkaConf.make(settings)
        let context = KafkaClientContext(logger: logger)
        let opaque = context.install(on: conf)
        var errstr = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.pointer, &errstr, errstr.count) else {
            conf.destroy()
            KafkaClientContext.release(opaque)
            throw .creationFailed(reason: errstr.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        defer {
            rd_kafka_consumer_close(rk)
            rd_kafka_destroy(rk)
            KafkaClientContext.release(opaque)
        }
        // Errors and logs are served by rd_kafka_consumer_poll from now on.
        _ = rd_kafka_poll_set_consumer(rk)

        guard let partitions = try partitionIDs(of: topic, rk: rk, deadline: deadline, logger: logger) else {
            logger.notice("Kafka topic does not exist; nothing to read", metadata: ["kafka.topic": "\(topic)"])
            if untilEnd { return }
            throw .metadataFailed(topic: topic, code: RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART.rawValue, reason: "the topic does not exist")
        }
        if partitions.isEmpty { return }

        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in partitions {
            let entry = rd_kafka_topic_partition_list_add(list, topic, partition)!
            entry.pointee.offset = 0  // explicit: never RD_KAFKA_OFFSET_BEGINNING (ListOffsets is unreliable on Tansu)
        }
        let assigned = rd_kafka_assign(rk, list)
        guard assigned == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw .assignFailed(topic: topic, reason: String(cString: rd_kafka_err2str(assigned)))
        }

        var atEnd = Set<Int32>()
        var recordsRead = 0
        while untilEnd ? atEnd.count < partitions.count : !shouldStop() {
            let left = untilEnd ? remainingMilliseconds(until: deadline) : 100
            if left <= 0 {
                throw .readTimedOut(topic: topic, partitionsAtEnd: atEnd.count, partitions: partitions.count,
                                    recordsRead: recordsRead)
            }
            guard let message = rd_kafka_consumer_poll(rk, min(left, 100)) else { continue }
            defer { rd_kafka_message_destroy(message) }
            let m = message.pointee
            switch m.err {
            case RD_KAFKA_RESP_ERR_NO_ERROR:
                onRecord(consumedRecord(message, topic: topic))
                recordsRead += 1
                // A record beyond an earlier EOF means the partition grew; it is at its end again only at the next EOF.
                atEnd.remove(m.partition)
            case RD_KAFKA_RESP_ERR__PARTITION_EOF:
                atEnd.insert(m.partition)
            default:
                let reason = rd_kafka_message_errstr(message).map { String(cString: $0) }
                    ?? String(cString: rd_kafka_err2str(m.err))
                // Transport hiccups are retried by librdkafka; only errors about our partitions end the read.
                if m.rkt != nil || KafkaErrorClassifier.classify(m.err.rawValue) != .outage {
                    throw .consumeFailed(topic: topic, code: m.err.rawValue, reason: reason)
                }
                logger.debug("Kafka consumer error while reading, retrying",
                             metadata: ["kafka.error": "\(String(cString: rd_kafka_err2name(m.err)))"])
            }
        }
        logger.debug("Kafka topic read",
                     metadata: ["kafka.topic": "\(topic)", "kafka.records": "\(recordsRead)",
                                "kafka.partitions": "\(partitions.count)"])
    }

    /// The topic's partition ids, `nil` when the topic does not exist. Retries transient states
    /// (leader not yet elected, broker not yet reachable) until the deadline.
    private static func partitionIDs(
        of topic: String,
        rk: OpaquePointer,
        deadline: ContinuousClock.Instant,
        logger: Logger
    ) throws(KafkaClientError) -> [Int32]? {
        let rkt = rd_kafka_topic_new(rk, topic, nil)
        defer { if let rkt { rd_kafka_topic_destroy(rkt) } }
        var lastError = RD_KAFKA_RESP_ERR_NO_ERROR
        while true {
            let left = remainingMilliseconds(until: deadline)
            if left <= 0 {
                throw .metadataFailed(topic: topic, code: lastError.rawValue,
                                      reason: String(cString: rd_kafka_err2str(lastError)))
            }
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let err = rd_kafka_metadata(rk, 0, rkt, &metadata, min(left, 5_000))
            defer { if let metadata { rd_kafka_metadata_destroy(metadata) } }
            if err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata, metadata.pointee.topic_cnt > 0 {
                let described = metadata.pointee.topics[0]
                switch described.err {
                case RD_KAFKA_RESP_ERR_NO_ERROR:
                    let partitions = (0..<Int(described.partition_cnt)).map { described.partitions[$0] }
                    if partitions.allSatisfy({ $0.err == RD_KAFKA_RESP_ERR_NO_ERROR }) {
                        return partitions.map(\.id).sorted()
                    }
                    lastError = partitions.first { $0.err != RD_KAFKA_RESP_ERR_NO_ERROR }!.err
                case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
                    return nil
                default:
                    lastError = described.err
                    if KafkaErrorClassifier.classify(described.err.rawValue) == .permanent {
                        throw .metadataFailed(topic: topic, code: described.err.rawValue,
                                              reason: String(cString: rd_kafka_err2str(described.err)))
                    }
                }
            } else {
                lastError = err
            }
            logger.debug("Kafka metadata not ready, retrying",
                         metadata: ["kafka.topic": "\(topic)", "kafka.error": "\(String(cString: rd_kafka_err2name(lastError)))"])
            Thread.sleep(forTimeInterval: 0.1)  // on the reader's own thread, not the cooperative pool
        }
    }

    private static func consumedRecord(_ message: UnsafeMutablePointer<rd_kafka_message_t>, topic: String) -> ConsumedRecord {
        let m = message.pointee
        let key: [UInt8]? = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        let value: [UInt8] = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? []
        var headers: [KafkaHeader] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(message, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            var index = 0
            var name: UnsafePointer<CChar>?
            var valuePointer: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(hdrs, index, &name, &valuePointer, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                headers.append(KafkaHeader(
                    name: name.map { String(cString: $0) } ?? "",
                    value: valuePointer.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                ))
                index += 1
            }
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &timestampType)
        return ConsumedRecord(
            topic: topic,
            partition: m.partition,
            offset: m.offset,
            key: key,
            value: value,
            headers: headers,
            timestamp: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE || timestamp < 0 ? nil : timestamp
        )
    }

    private static func remainingMilliseconds(until deadline: ContinuousClock.Instant) -> Int32 {
        KafkaProducerHandle.timeoutMilliseconds(ContinuousClock.now.duration(to: deadline))
    }
}
