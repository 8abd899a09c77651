import OutboxRelay
import Testing

/// The classification table, code by code. Codes are written as numbers on purpose: together with the
/// librdkafka name check they pin the table to the real `rd_kafka_resp_err_t` values.
@Suite("KafkaErrorClassifier")
struct KafkaErrorClassifierTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let code: Int32
        let expected: DeliveryFailureClass
        var testDescription: String { "\(name) (\(code)) → \(expected.rawValue)" }
    }

    static let cases: [Case] = [
        // Outage: the broker or the path to it, client shutdown, client-wide misconfiguration.
        Case(name: "_TRANSPORT", code: -195, expected: .outage),
        Case(name: "_ALL_BROKERS_DOWN", code: -187, expected: .outage),
        Case(name: "_MSG_TIMED_OUT", code: -192, expected: .outage),
        Case(name: "_TIMED_OUT", code: -185, expected: .outage),
        Case(name: "_TIMED_OUT_QUEUE", code: -166, expected: .outage),
        Case(name: "_QUEUE_FULL", code: -184, expected: .outage),
        Case(name: "_RESOLVE", code: -193, expected: .outage),
        Case(name: "_FATAL", code: -150, expected: .outage),
        Case(name: "_DESTROY", code: -197, expected: .outage),
        Case(name: "_PURGE_QUEUE", code: -152, expected: .outage),
        Case(name: "_PURGE_INFLIGHT", code: -151, expected: .outage),
        Case(name: "_SSL", code: -181, expected: .outage),
        Case(name: "_AUTHENTICATION", code: -169, expected: .outage),
        Case(name: "NETWORK_EXCEPTION", code: 13, expected: .outage),
        Case(name: "REQUEST_TIMED_OUT", code: 7, expected: .outage),
        Case(name: "BROKER_NOT_AVAILABLE", code: 8, expected: .outage),
        Case(name: "CLUSTER_AUTHORIZATION_FAILED", code: 31, expected: .outage),
        Case(name: "INVALID_REQUIRED_ACKS", code: 21, expected: .outage),
        Case(name: "UNSUPPORTED_VERSION", code: 35, expected: .outage),
        Case(name: "SASL_AUTHENTICATION_FAILED", code: 58, expected: .outage),
        Case(name: "PRODUCER_FENCED", code: 90, expected: .outage),
        // Fatal-class in librdkafka: the producer's idempotence state is broken (replace the producer).
        Case(name: "OUT_OF_ORDER_SEQUENCE_NUMBER", code: 45, expected: .outage),
        Case(name: "UNKNOWN_PRODUCER_ID", code: 59, expected: .outage),
        Case(name: "_GAPLESS_GUARANTEE", code: -148, expected: .outage),
        // Retriable: transient partition/cluster state.
        Case(name: "LEADER_NOT_AVAILABLE", code: 5, expected: .retriable),
        Case(name: "NOT_LEADER_FOR_PARTITION", code: 6, expected: .retriable),
        Case(name: "NOT_ENOUGH_REPLICAS", code: 19, expected: .retriable),
        Case(name: "NOT_ENOUGH_REPLICAS_AFTER_APPEND", code: 20, expected: .retriable),
        Case(name: "UNKNOWN_TOPIC_OR_PART", code: 3, expected: .retriable),
        Case(name: "_UNKNOWN_TOPIC", code: -188, expected: .retriable),
        Case(name: "_UNKNOWN_PARTITION", code: -190, expected: .retriable),
        Case(name: "KAFKA_STORAGE_ERROR", code: 56, expected: .retriable),
        Case(name: "REPLICA_NOT_AVAILABLE", code: 9, expected: .retriable),
        Case(name: "THROTTLING_QUOTA_EXCEEDED", code: 89, expected: .retriable),
        Case(name: "UNKNOWN", code: -1, expected: .retriable),
        // Permanent: this record can never be delivered.
        Case(name: "MSG_SIZE_TOO_LARGE", code: 10, expected: .permanent),
        Case(name: "INVALID_MSG", code: 2, expected: .permanent),  // Kafka's CORRUPT_MESSAGE
        Case(name: "RECORD_LIST_TOO_LARGE", code: 18, expected: .permanent),
        Case(name: "INVALID_MSG_SIZE", code: 4, expected: .permanent),
        Case(name: "TOPIC_AUTHORIZATION_FAILED", code: 29, expected: .permanent),
        Case(name: "INVALID_RECORD", code: 87, expected: .permanent),
        Case(name: "TOPIC_EXCEPTION", code: 17, expected: .permanent),
        Case(name: "_INVALID_ARG", code: -186, expected: .permanent),
        Case(name: "POLICY_VIOLATION", code: 44, expected: .permanent),
        Case(name: "INVALID_TIMESTAMP", code: 32, expected: .permanent),
    ]

    @Test("each named code has its class", arguments: cases)
    func namedCode(_ testCase: Case) {
        #expect(KafkaErrorClassifier.classify(testCase.code) == testCase.expected)
        // The number really is the librdkafka code of that name.
        let error = DeliveryError(code: testCase.code)
        #expect(error.name == testCase.name)
        #expect(error.failureClass == testCase.expected)
        #expect(error.code == testCase.code)
        #expect(!error.message.isEmpty)
    }

    /// librdkafka retried whatever it knew to be retriable before reporting: an unknown broker code
    /// is the broker refusing the record, an unknown local code is the client's state.
    @Test("unknown broker codes are permanent, unknown local codes an outage", arguments: [Int32(9999), 96, 1000])
    func unknownBrokerCodeIsPermanent(_ code: Int32) {
        #expect(KafkaErrorClassifier.explicitEntries[code] == nil)
        #expect(KafkaErrorClassifier.classify(code) == .permanent)
    }

    @Test("unknown local codes are an outage", arguments: [Int32(-9999), -140, -101])
    func unknownLocalCodeIsAnOutage(_ code: Int32) {
        #expect(KafkaErrorClassifier.explicitEntries[code] == nil)
        #expect(KafkaErrorClassifier.classify(code) == .outage)
    }

    @Test("only the idempotence-breaking codes ask for a new producer")
    func requiresNewProducer() {
        for code: Int32 in [-150, 45, 59, -148, 90, 47] {  // _FATAL, OUT_OF_ORDER…, UNKNOWN_PRODUCER_ID, _GAPLESS…, PRODUCER_FENCED, INVALID_PRODUCER_EPOCH
            #expect(DeliveryError(code: code).requiresNewProducer, "\(DeliveryError(code: code).name)")
        }
        for code: Int32 in [-192, -195, -152, 6, 10, 2, -1] {
            #expect(!DeliveryError(code: code).requiresNewProducer, "\(DeliveryError(code: code).name)")
        }
    }

    @Test("every explicit entry is covered by this test's cases or is one of the documented extras")
    func tableIsNotEmptyAndConsistent() {
        let entries = KafkaErrorClassifier.explicitEntries
        for testCase in Self.cases {
            #expect(entries[testCase.code] == testCase.expected, "\(testCase.name) missing from the table")
        }
        #expect(Set(entries.values) == [.outage, .retriable, .permanent])
    }

    @Test("context is appended to librdkafka's text")
    func contextInMessage() {
        let error = DeliveryError(code: 10, context: "topic \"orders\"")
        #expect(error.message.hasSuffix("(topic \"orders\")"))
        #expect(error.description.hasPrefix("MSG_SIZE_TOO_LARGE [permanent]: "))
    }
}
