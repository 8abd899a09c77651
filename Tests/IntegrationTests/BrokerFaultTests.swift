import CRdKafka
import Foundation
import Outbox
import OutboxRelay
import OutboxTestSupport
import PostgresNIO
import Testing

/// Per-key order and no loss when the broker fails part of a batch, injected deterministically
/// with librdkafka's mock cluster (see `MockKafkaCluster`): a produce request failing in the
/// middle of a batch (each class of error), brokers down for longer than the delivery timeout
/// while records wait in librdkafka's queue.
///
/// Every test drains one outbox with an in-process relay against the mock cluster and checks the
/// ledger of what the cluster holds: nothing lost, no key out of order, dead letters only for
/// errors about the record itself.
@Suite(.serialized) struct BrokerFaultTests {
    /// 400 messages over 20 keys (20 each, interleaved), read as one batch: every key has many
    /// messages in every produce request.
    static let messages = 400
    static let keys = 20

    struct Run {
        let fixture: OutboxFixture
        let cluster: MockKafkaCluster
        let expected: [Int64: String]

        func ledger() async throws -> Ledger {
            var deadLettered = Set<Int64>()
            let rows = try await fixture.client.query(
                PostgresQuery(unsafeSQL: "SELECT id FROM \(fixture.schema.rawValue).dead_letters"), logger: fixture.logger)
            for try await id in rows.decode(Int64.self) { deadLettered.insert(id) }
            return try Ledger(
                records: try await fixture.readTopic(brokers: cluster.bootstrapServers), expected: expected, deadLettered: deadLettered)
        }

        /// The ledger, recorded as `scenario`'s measurement, after the checks every scenario
        /// shares: nothing lost, no key out of order, nothing unexpected.
        func cleanLedger(_ scenario: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> Ledger {
            let ledger = try await ledger()
            Measurements.record("broker-fault", "\(scenario): \(ledger)")
            #expect(ledger.lost.isEmpty, "\(ledger)", sourceLocation: sourceLocation)
            #expect(ledger.orderViolations.isEmpty, "\(ledger)", sourceLocation: sourceLocation)
            #expect(ledger.unexpected.isEmpty && ledger.keyMismatches == 0, "\(ledger)", sourceLocation: sourceLocation)
            return ledger
        }

        func deadLetterReasons() async throws -> [String: Int64] {
            var reasons: [String: Int64] = [:]
            let rows = try await fixture.client.query(
                PostgresQuery(unsafeSQL: "SELECT reason, count(*) FROM \(fixture.schema.rawValue).dead_letters GROUP BY reason"),
                logger: fixture.logger)
            for try await (reason, count) in rows.decode((String, Int64).self) { reasons[reason] = count }
            return reasons
        }
    }

    /// A migrated outbox with ``messages`` pending and a 3-broker mock cluster holding its topic
    /// (4 partitions); `fault` runs while one in-process relay drains the outbox (a relay that
    /// does not finish within `timeout` fails the test).
    static func drain(
        messageTimeout: Duration = .seconds(10),
        kafkaProperties: [String: String] = [:],
        timeout: Duration = .seconds(90),
        before: @Sendable (MockKafkaCluster) throws -> Void = { _ in },
        fault: @escaping @Sendable (MockKafkaCluster) async throws -> Void = { _ in },
        check: @Sendable (Run) async throws -> Void
    ) async throws {
        try await OutboxFixture.with { fixture in
            let cluster = try MockKafkaCluster(brokers: 3)
            try cluster.createTopic(fixture.topic, partitions: 4, replicationFactor: 3)
            let batch = (0..<messages).map { n in
                OutboxMessage(topic: fixture.topic, key: "key-\(n % keys)", payload: "payload-\(n)")
            }
            let ids = try await fixture.enqueue(batch)
            let expected = Dictionary(uniqueKeysWithValues: zip(ids, batch.map { $0.key! }))
            try before(cluster)
            let configuration = fixture.relayConfiguration { $0.batchSize = messages }
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try await fixture.drain(
                        configuration, messageTimeout: messageTimeout, brokers: cluster.bootstrapServers,
                        kafkaProperties: kafkaProperties)
                    return true
                }
                group.addTask {
                    try await fault(cluster)
                    try await Task.sleep(for: timeout)
                    return false
                }
                let drained = try await group.next()!
                group.cancelAll()
                #expect(drained, "the relay did not drain the outbox within \(timeout)")
            }
            try await check(Run(fixture: fixture, cluster: cluster, expected: expected))
        }
    }

    /// Fails the fourth produce request (to whichever broker) with `error`: with 20 records per
    /// request, the middle of the 400-record batch.
    static func failFourthProduceRequest(with error: rd_kafka_resp_err_t) -> @Sendable (MockKafkaCluster) throws -> Void {
        { $0.failNextRequests(.produce, with: [.init(0), .init(0), .init(0), error]) }
    }

    // MARK: Records waiting in librdkafka's queue past the delivery timeout

    /// librdkafka times out queued records one by one by their enqueue time, and writes the ones
    /// behind them once the broker is back: "1, 4, 5" (its INTRODUCTION.md, "Message timeout
    /// considerations"). With a local queue of 10 records a 400-record batch is enqueued 10 at a
    /// time as earlier ones time out; the brokers come back after the first group timed out and
    /// before the second one does. Before the fix the relay deleted the later, delivered records
    /// and published the first group afterwards: 10 keys out of order.
    @Test func brokersDownPastTheDeliveryTimeoutWhileRecordsAreQueuedReorderNoKey() async throws {
        try await Self.drain(
            messageTimeout: .seconds(2),
            kafkaProperties: ["queue.buffering.max.messages": "10", "batch.num.messages": "5"],
            before: { try $0.setAllBrokers(up: false) },
            fault: { cluster in
                try await Task.sleep(for: .seconds(3))
                try cluster.setAllBrokers(up: true)
            }
        ) { run in
            _ = try await run.cleanLedger("brokers down past the delivery timeout, records queued")
            #expect(try await run.deadLetterReasons().isEmpty, "an outage is not poison")
        }
    }

    // MARK: One produce request failing in the middle of a batch

    /// A retriable error on the fourth produce request: librdkafka retries it in order.
    @Test func aRetriableErrorInTheMiddleOfABatchReordersNothing() async throws {
        try await Self.drain(
            kafkaProperties: ["batch.num.messages": "20"],
            before: Self.failFourthProduceRequest(with: RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION)
        ) { run in
            _ = try await run.cleanLedger("retriable error mid-batch")
            #expect(try await run.deadLetterReasons().isEmpty)
        }
    }

    /// A request answered after the delivery timeout: its records time out while in flight.
    @Test func aRequestAnsweredAfterTheDeliveryTimeoutReordersNothing() async throws {
        try await Self.drain(
            messageTimeout: .seconds(2),
            kafkaProperties: ["batch.num.messages": "20"],
            before: { cluster in
                for broker in 1...cluster.brokerCount {
                    try cluster.delayNextRequest(.produce, broker: broker, by: .seconds(3))
                }
            }
        ) { run in
            _ = try await run.cleanLedger("a request answered after the delivery timeout")
            #expect(try await run.deadLetterReasons().isEmpty, "a timeout is not poison")
        }
    }

    /// A permanent error on the fourth produce request: its records are dead-lettered (the
    /// broker refused them), every other record is published, and no key is out of order.
    @Test func aPermanentErrorInTheMiddleOfABatchDeadLettersOnlyItsRecords() async throws {
        try await Self.drain(
            kafkaProperties: ["batch.num.messages": "20"],
            before: Self.failFourthProduceRequest(with: RD_KAFKA_RESP_ERR_INVALID_RECORD)
        ) { run in
            _ = try await run.cleanLedger("permanent error mid-batch")
            let reasons = try await run.deadLetterReasons()
            #expect(Set(reasons.keys) == ["broker_rejected"], "\(reasons)")
            #expect((reasons["broker_rejected"] ?? 0) <= 20, "only the failed request's records: \(reasons)")
        }
    }

    /// Errors that break the idempotent producer's state (fatal-class in librdkafka) on the fourth
    /// produce request: nothing dead-lettered, no attempt spent, no key out of order.
    @Test(arguments: [RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID])
    func aProducerStateErrorInTheMiddleOfABatchLosesAndReordersNothing(_ error: rd_kafka_resp_err_t) async throws {
        try await Self.drain(
            kafkaProperties: ["batch.num.messages": "20"],
            before: Self.failFourthProduceRequest(with: error)
        ) { run in
            _ = try await run.cleanLedger("producer state error \(error.rawValue) mid-batch")
            #expect(try await run.deadLetterReasons().isEmpty, "the record is not at fault")
            #expect(try await run.fixture.scalar("SELECT count(*) FROM {schema}.messages WHERE attempts > 0", as: Int64.self) == 0)
        }
    }

    /// A broker whose size limit is below the producer's batches refuses a request of healthy
    /// records: retried (the attempt limit bounds it), not dead-lettered at once.
    @Test func aBrokerSizeRefusalOfARequestIsRetriedNotDeadLettered() async throws {
        try await Self.drain(
            kafkaProperties: ["batch.num.messages": "20"],
            before: Self.failFourthProduceRequest(with: RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
        ) { run in
            let ledger = try await run.cleanLedger("broker size refusal of a request")
            #expect(try await run.deadLetterReasons().isEmpty, "healthy records are not poison")
            #expect(ledger.distinctPublished == Self.messages)
        }
    }
}
