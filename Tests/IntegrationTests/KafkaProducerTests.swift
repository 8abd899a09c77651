import Foundation
import Logging
@testable import OutboxRelay
import Testing

/// The librdkafka wrapper against a real broker (Tansu from `scripts/services`).
/// Needs `eval "$(scripts/services env)"`: OUTBOX_KAFKA_BROKERS and librdkafka ≥ 2.2 first on LD_LIBRARY_PATH.
@Suite("KafkaProducer (real broker)", .serialized)
struct KafkaProducerTests {
    let logger: Logger = {
        var logger = Logger(label: "outbox-relay.tests.kafka")
        logger.logLevel = .notice
        return logger
    }()

    /// The broker address, or a test failure that says how to start the services.
    func brokers() throws -> String {
        let brokers = ProcessInfo.processInfo.environment["OUTBOX_KAFKA_BROKERS"]
        try #require(
            brokers.map { !$0.isEmpty } == true,
            "OUTBOX_KAFKA_BROKERS is not set: integration tests need the services; run scripts/bootstrap, scripts/services start, then eval \"$(scripts/services env)\""
        )
        try Librdkafka.requireSupportedVersion()
        return brokers!
    }

    func freshTopic(_ prefix: String) -> String {
        "\(prefix)-\(UInt64.random(in: 0...UInt64.max))"
    }

    func makeProducer(_ brokers: String, properties: [String: String] = [:], messageTimeout: Duration = .seconds(30)) throws -> KafkaProducer {
        try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                bootstrapServers: brokers, properties: properties, messageTimeout: messageTimeout),
            logger: logger
        )
    }

    @Test("1,000 keyed records with headers are delivered and read back unchanged, in per-key order")
    func roundTrip() async throws {
        let brokers = try brokers()
        let topic = freshTopic("outbox-it-roundtrip")
        let producer = try makeProducer(brokers)
        let records = (0..<1_000).map { i in
            KafkaRecord(
                topic: topic,
                key: Array("key-\(i % 37)".utf8),
                value: Array("value-\(i)-".utf8) + [UInt8](repeating: UInt8(i % 251), count: 300),
                headers: [
                    KafkaHeader(name: "content-type", string: "application/x-protobuf"),
                    KafkaHeader(name: "seq", string: "\(i)"),
                    KafkaHeader(name: "empty", value: []),
                ]
            )
        }
        let results = await producer.send(records)
        #expect(results.count == 1_000)
        let failures = results.compactMap { result -> DeliveryError? in
            if case .failure(let error) = result { return error }
            return nil
        }
        #expect(failures.isEmpty, "first failures: \(failures.prefix(3))")
        await producer.close(flushTimeout: .seconds(5))

        let consumed = try await KafkaTopicReader.readAll(
            topic: topic, bootstrapServers: brokers, timeout: .seconds(30), logger: logger)
        #expect(consumed.count == 1_000)

        let sentBySeq = Dictionary(uniqueKeysWithValues: records.enumerated().map { ($0.offset, $0.element) })
        var seenSeqs = Set<Int>()
        for record in consumed {
            let seqHeader = try #require(record.headers.first { $0.name == "seq" })
            let seq = try #require(Int(String(decoding: seqHeader.value, as: UTF8.self)))
            let sent = try #require(sentBySeq[seq])
            #expect(record.topic == topic)
            #expect(record.key == sent.key)
            #expect(record.value == sent.value)
            #expect(record.headers == sent.headers)
            #expect(record.timestamp != nil)
            seenSeqs.insert(seq)
        }
        #expect(seenSeqs.count == 1_000)

        // Per-key order: one partition per key, and offsets increase with the send order.
        let byKey = Dictionary(grouping: consumed) { $0.key ?? [] }
        #expect(byKey.count == 37)
        for (_, group) in byKey {
            #expect(Set(group.map(\.partition)).count == 1)
            let seqs = group.sorted { $0.offset < $1.offset }.map { record in
                Int(String(decoding: record.headers.first { $0.name == "seq" }!.value, as: UTF8.self))!
            }
            #expect(seqs == seqs.sorted())
        }
    }

    @Test("an invalid topic name fails that record permanently; the rest of the batch is delivered")
    func invalidTopic() async throws {
        let brokers = try brokers()
        let producer = try makeProducer(brokers)
        let good = freshTopic("outbox-it-good")
        let results = await producer.send([
            KafkaRecord(topic: "bad topic!", key: nil, value: Array("x".utf8)),
            KafkaRecord(topic: good, key: Array("k".utf8), value: Array("y".utf8)),
        ])
        await producer.close(flushTimeout: .seconds(5))
        guard case .failure(let error) = results[0] else {
            Issue.record("a record for \"bad topic!\" was delivered")
            return
        }
        #expect(error.failureClass == .permanent)
        #expect(error.name == "TOPIC_EXCEPTION")
        #expect(error.message.contains("bad topic!"))
        #expect((try? results[1].get()) != nil)
    }

    @Test("a record above message.max.bytes fails locally and permanently")
    func tooLarge() async throws {
        let brokers = try brokers()
        let producer = try makeProducer(brokers, properties: ["message.max.bytes": "100000"])
        let topic = freshTopic("outbox-it-large")
        let results = await producer.send([
            KafkaRecord(topic: topic, key: nil, value: [UInt8](repeating: 1, count: 200_000)),
            KafkaRecord(topic: topic, key: nil, value: [UInt8](repeating: 1, count: 1_000)),
        ])
        await producer.close(flushTimeout: .seconds(5))
        guard case .failure(let error) = results[0] else {
            Issue.record("a 200 kB record was delivered despite message.max.bytes=100000")
            return
        }
        #expect(error.failureClass == .permanent)
        #expect(error.name == "MSG_SIZE_TOO_LARGE")
        #expect((try? results[1].get()) != nil)
    }

    @Test("a tiny local queue (QUEUE_FULL) and concurrent sends still deliver everything")
    func queueFullAndConcurrency() async throws {
        let brokers = try brokers()
        let producer = try makeProducer(brokers, properties: ["queue.buffering.max.messages": "100"])
        let topic = freshTopic("outbox-it-queuefull")
        let counts = await withTaskGroup(of: Int.self) { group in
            for task in 0..<4 {
                group.addTask {
                    let records = (0..<2_000).map { i in
                        KafkaRecord(topic: topic, key: Array("t\(task)-\(i % 10)".utf8), value: Array("\(i)".utf8))
                    }
                    let results = await producer.send(records)
                    return results.filter { (try? $0.get()) != nil }.count
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        await producer.close(flushTimeout: .seconds(5))
        #expect(counts == [2_000, 2_000, 2_000, 2_000])
        let consumed = try await KafkaTopicReader.readAll(
            topic: topic, bootstrapServers: brokers, timeout: .seconds(30), logger: logger)
        #expect(consumed.count == 8_000)
    }

    @Test("close is idempotent; after close, sends fail as outage and the probe says unreachable")
    func closeTwice() async throws {
        let brokers = try brokers()
        let producer = try makeProducer(brokers)
        #expect(await producer.brokerIsReachable(timeout: .seconds(5)))
        await producer.close(flushTimeout: .seconds(1))
        await producer.close(flushTimeout: .seconds(1))
        let results = await producer.send([KafkaRecord(topic: freshTopic("outbox-it-closed"), key: nil, value: [1])])
        guard case .failure(let error) = results[0] else {
            Issue.record("send after close succeeded")
            return
        }
        #expect(error.failureClass == .outage)
        #expect(error.name == "_DESTROY")
        #expect(await producer.brokerIsReachable(timeout: .seconds(1)) == false)
    }

    @Test("no broker: the probe says unreachable and records are given up at the delivery timeout as outage, not poison")
    func noBroker() async throws {
        _ = try brokers()
        // Port 9 (discard) on loopback: nothing listens there.
        let producer = try makeProducer("127.0.0.1:9", messageTimeout: .seconds(2))
        #expect(await producer.brokerIsReachable(timeout: .milliseconds(500)) == false)
        let started = ContinuousClock.now
        let report = await producer.send(
            [KafkaRecord(topic: "outbox-it-nobroker", key: Array("k".utf8), value: [1])], until: .now + .seconds(2),
            abandonWhen: { nil })
        let waited = ContinuousClock.now - started
        await producer.close(flushTimeout: .milliseconds(100))
        guard case .failure(let error) = report.results[0] else {
            Issue.record("delivered without a broker")
            return
        }
        // The producer gives up itself at the delivery timeout, purging (librdkafka's own
        // timeout, which leaves gaps, is set far later).
        #expect(error.failureClass == .outage)
        #expect(error.name == "_PURGE_QUEUE")
        #expect(report.gaveUp == .deliveryTimeout(.seconds(2)))
        #expect(waited < .seconds(10), "given up at the deadline, not at librdkafka's backstop timeout: \(waited)")
    }

    @Test("a fatal idempotent-producer error is exposed, and every later record fails as outage")
    func fatalError() async throws {
        let brokers = try brokers()
        let producer = try makeProducer(brokers)
        let topic = freshTopic("outbox-it-fatal")
        let warmUp = await producer.send([KafkaRecord(topic: topic, key: Array("k".utf8), value: [1])])
        #expect((try? warmUp[0].get()) != nil)
        #expect(producer.fatalError == nil)

        producer.simulateFatalErrorForTesting(code: 45, reason: "simulated OUT_OF_ORDER_SEQUENCE_NUMBER")
        // The error callback is served by the poll thread.
        let deadline = ContinuousClock.now + .seconds(5)
        while producer.fatalError == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let fatal = try #require(producer.fatalError)
        #expect(fatal.name == "_FATAL")
        #expect(fatal.failureClass == .outage)
        #expect(fatal.message.contains("OUT_OF_ORDER_SEQUENCE_NUMBER"))

        let results = await producer.send([KafkaRecord(topic: topic, key: Array("k".utf8), value: [2])])
        await producer.close(flushTimeout: .seconds(1))
        guard case .failure(let error) = results[0] else {
            Issue.record("a fatal producer still delivered")
            return
        }
        #expect(error.name == "_FATAL")
        #expect(error.failureClass == .outage)
        #expect(error.message.contains("recreate the producer"))
    }

    @Test("reading a topic that does not exist returns no records")
    func readMissingTopic() async throws {
        let brokers = try brokers()
        let consumed = try await KafkaTopicReader.readAll(
            topic: freshTopic("outbox-it-missing"), bootstrapServers: brokers, timeout: .seconds(10), logger: logger)
        #expect(consumed.isEmpty)
    }
}
