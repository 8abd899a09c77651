import CRdKafka
import CRdKafkaMock
import Foundation

/// librdkafka's in-process mock cluster: real Kafka-protocol brokers on loopback TCP ports, served
/// by librdkafka's own threads, whose faults the test sets request by request. For what a single
/// real broker cannot do on demand: fail one produce request in the middle of a batch, lose a
/// partition's leader, go down and come back at an exact moment, answer slowly.
///
/// A relay (in-process or a child process) reaches it through ``bootstrapServers`` like any broker.
final class MockKafkaCluster: @unchecked Sendable {
    /// The librdkafka handle hosting the cluster (a producer with no brokers of its own).
    private let host: OpaquePointer
    private let cluster: OpaquePointer
    let brokerCount: Int32

    /// Kafka API keys the tests inject errors for.
    enum API: Int16 {
        case produce = 0
        case metadata = 3
        case initProducerId = 22
    }

    init(brokers: Int32 = 3) throws {
        let conf = rd_kafka_conf_new()
        var errstr = [CChar](repeating: 0, count: 512)
        _ = rd_kafka_conf_set(conf, "log_level", "3", &errstr, errstr.count)
        guard let host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errstr, errstr.count) else {
            throw MockError(message: "cannot create the mock cluster's host handle: \(String(cString: errstr))")
        }
        guard let cluster = rd_kafka_mock_cluster_new(host, Int32(brokers)) else {
            rd_kafka_destroy(host)
            throw MockError(message: "rd_kafka_mock_cluster_new failed")
        }
        self.host = host
        self.cluster = cluster
        self.brokerCount = brokers
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(host)
    }

    /// `host:port,host:port,...` of every mock broker.
    var bootstrapServers: String { String(cString: rd_kafka_mock_cluster_bootstraps(cluster)) }

    func createTopic(_ topic: String, partitions: Int32, replicationFactor: Int32 = 1) throws {
        try check(rd_kafka_mock_topic_create(cluster, topic, partitions, replicationFactor), "create topic \(topic)")
    }

    /// The next `errors.count` requests of `api` (to any broker) fail with these codes, in order.
    func failNextRequests(_ api: API, with errors: [rd_kafka_resp_err_t]) {
        errors.withUnsafeBufferPointer { rd_kafka_mock_push_request_errors_array(cluster, api.rawValue, $0.count, $0.baseAddress) }
    }

    /// The next request of `api` to `broker` is answered with `error` after `roundTrip`.
    func delayNextRequest(_ api: API, broker: Int32, by roundTrip: Duration, error: rd_kafka_resp_err_t = RD_KAFKA_RESP_ERR_NO_ERROR) throws {
        try check(
            outbox_mock_push_broker_error_rtt(cluster, broker, api.rawValue, error, Int32(roundTrip.milliseconds)),
            "delay a request on broker \(broker)")
    }

    /// Makes `broker` lead `partition` of `topic`; -1 leaves the partition without a leader.
    func setLeader(topic: String, partition: Int32, broker: Int32) throws {
        try check(rd_kafka_mock_partition_set_leader(cluster, topic, partition, broker), "set the leader of \(topic)/\(partition)")
    }

    /// Takes a broker down (its connections are closed and new ones refused) or brings it back.
    func setBroker(_ broker: Int32, up: Bool) throws {
        try check(up ? rd_kafka_mock_broker_set_up(cluster, broker) : rd_kafka_mock_broker_set_down(cluster, broker),
                  "set broker \(broker) \(up ? "up" : "down")")
    }

    func setAllBrokers(up: Bool) throws {
        for broker in 1...brokerCount { try setBroker(broker, up: up) }
    }

    /// Every response of `broker` takes at least `roundTrip`.
    func setRoundTrip(broker: Int32, _ roundTrip: Duration) throws {
        try check(rd_kafka_mock_broker_set_rtt(cluster, broker, Int32(roundTrip.milliseconds)), "set the round trip of broker \(broker)")
    }

    private func check(_ code: rd_kafka_resp_err_t, _ what: String) throws {
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw MockError(message: "mock cluster: \(what): \(String(cString: rd_kafka_err2str(code)))")
        }
    }

    struct MockError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}

extension Duration {
    fileprivate var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
