import CRdKafka
import Foundation
import Logging
@testable import OutboxRelay
import Synchronization
import Testing

/// A send that returns before every delivery report is in (`StragglerPolicy`): what it hands back,
/// and that the records left in flight stay fenced. On librdkafka's mock cluster, partition 0 led
/// by a broker that answers slowly, the other partitions by prompt ones.
@Suite(.serialized) struct StragglerTests {
    static let records = 200

    /// A producer on a 3-broker mock cluster whose partition 0 answers after `roundTrip`.
    private func withSlowPartition(
        roundTrip: Duration, _ body: (KafkaProducer, [KafkaRecord], MockKafkaCluster) async throws -> Void
    ) async throws {
        let cluster = try MockKafkaCluster(brokers: 3)
        let topic = "stragglers-\(UUID().uuidString.prefix(8))"
        try cluster.createTopic(topic, partitions: 4, replicationFactor: 3)
        for (partition, broker) in [(0, 3), (1, 1), (2, 2), (3, 1)] as [(Int32, Int32)] {
            try cluster.setLeader(topic: topic, partition: partition, broker: broker)
        }
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers, messageTimeout: .seconds(10)),
            logger: Logger(label: "stragglers"))
        // The producer id and metadata first, on a healthy cluster.
        let warm = await producer.send([KafkaRecord(topic: topic, key: Array("warm".utf8), value: [1])])
        #expect(warm.allSatisfy { if case .success = $0 { true } else { false } })
        try cluster.setRoundTrip(broker: 3, roundTrip)
        let records = (0..<Self.records).map { n in
            KafkaRecord(topic: topic, key: Array("key-\(n % 40)".utf8), value: Array("value-\(n)".utf8))
        }
        try await body(producer, records, cluster)
        await producer.close(flushTimeout: .zero)
    }

    /// The send returns with partition 0's records in flight (nil results, exactly the outstanding
    /// indices) and everything else delivered; once the slow partition answers, their reports
    /// come in as delivered.
    @Test func theSendReturnsWithTheSlowPartitionsRecordsInFlightAndTheyArriveLater() async throws {
        try await withSlowPartition(roundTrip: .seconds(4)) { producer, records, _ in
            let started = ContinuousClock.now
            let report = await producer.send(
                records, until: .now + .seconds(10), stragglers: StragglerPolicy(grace: .milliseconds(500), budget: Self.records),
                abandonWhen: { nil })
            let returnedAfter = ContinuousClock.now - started
            let outstanding = try #require(report.outstanding, "the send waited for every report (\(returnedAfter))")
            #expect(returnedAfter < .seconds(3), "returned after \(returnedAfter), before the slow partition answered")
            #expect(outstanding.count > 0 && outstanding.count < Self.records)
            #expect(report.results.indices.filter { report.results[$0] == nil } == outstanding.indices)
            let delivered = report.results.filter { if case .success? = $0 { true } else { false } }.count
            #expect(delivered == Self.records - outstanding.count, "every other record delivered")
            let late = await outstanding.results()
            #expect(late.count == outstanding.count)
            #expect(late.allSatisfy { if case .success = $0 { true } else { false } }, "\(late.prefix(3))")
        }
    }

    /// Fencing: once the caller's reason to give up appears (a lane lease running out), the records
    /// left in flight are purged at once (not delivered 20 s later), so none of them can reach the
    /// broker after another relay may have taken their lanes.
    @Test func recordsLeftInFlightArePurgedOnceTheCallerGivesUp() async throws {
        try await withSlowPartition(roundTrip: .seconds(20)) { producer, records, _ in
            let reason = Mutex<String?>(nil)
            let report = await producer.send(
                records, until: .now + .seconds(10), stragglers: StragglerPolicy(grace: .milliseconds(500), budget: Self.records),
                abandonWhen: { reason.withLock { $0 } })
            let outstanding = try #require(report.outstanding)
            #expect(!outstanding.isComplete)
            reason.withLock { $0 = "lane lease running out" }
            let started = ContinuousClock.now
            let late = await outstanding.results()
            #expect(ContinuousClock.now - started < .seconds(5), "purged promptly, not answered after 20 s")
            let codes = Set(late.map { if case .failure(let error) = $0 { error.name } else { "delivered" } })
            #expect(codes.isSubset(of: ["_PURGE_INFLIGHT", "_PURGE_QUEUE"]), "\(codes)")
        }
    }

    /// Without a policy (or with more outstanding than its budget) the send waits as before.
    @Test func overTheBudgetTheSendWaitsForEveryReport() async throws {
        try await withSlowPartition(roundTrip: .seconds(3)) { producer, records, _ in
            let report = await producer.send(
                records, until: .now + .seconds(10), stragglers: StragglerPolicy(grace: .milliseconds(500), budget: 1),
                abandonWhen: { nil })
            #expect(report.outstanding == nil)
            #expect(report.results.allSatisfy { if case .success? = $0 { true } else { false } })
        }
    }
}
