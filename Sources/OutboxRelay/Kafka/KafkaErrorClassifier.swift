import CRdKafka

/// The one table that maps librdkafka error codes to what the relay does about them.
///
/// The guiding question for each code is *whose fault is it*:
/// - the path to the broker, the broker itself, or a client-wide configuration problem → ``DeliveryFailureClass/outage``:
///   every record would fail the same way, so spending attempts (and eventually dead-lettering healthy records)
///   would turn an outage into data loss. The relay pauses, reports not-ready, and resumes by itself
///   (or once an operator fixed the configuration).
/// - this one record, but only for now → ``DeliveryFailureClass/retriable``.
/// - this one record, forever → ``DeliveryFailureClass/permanent`` (dead letter).
///
/// **What reaches the table has already been retried.** librdkafka retries every error it knows to be
/// retriable itself, in order (the idempotent producer), until its message timeout, which the relay sets
/// past its own deadline (see `KafkaProducer.send(_:until:abandonWhen:)`). So a broker error in a delivery
/// report is one librdkafka gave up on for that record. That decides codes outside the table:
/// - an unknown *broker* code (≥ 0) is ``DeliveryFailureClass/permanent``: the broker refused the record
///   and librdkafka did not think retrying would help (the dead letter names the code);
/// - an unknown *local* code (< 0, `_`-prefixed) is ``DeliveryFailureClass/outage``: a state of the client,
///   not of the record, so no attempt is spent and nothing is dead-lettered for it.
///
/// Codes are the C enum constants of `rdkafka.h` (built against Debian's 2.0.2 headers; the numeric values are
/// stable across librdkafka versions, newer versions only add codes).
public enum KafkaErrorClassifier {
    /// Classifies a failed delivery. `RD_KAFKA_RESP_ERR_NO_ERROR` is not a failure; it classifies as retriable
    /// like any other code outside the table.
    public static func classify(_ code: Int32) -> DeliveryFailureClass {
        table[code] ?? (code >= 0 ? .permanent : .outage)
    }

    /// Whether the producer that reported `code` is unusable for its idempotence state and must be
    /// replaced (a fresh producer id) before anything else is sent: its sequence numbers no longer match
    /// the broker's, so every later record of the partition would fail or, worse, be written out of order.
    public static func requiresNewProducer(_ code: Int32) -> Bool {
        producerUnusable.contains { $0.rawValue == code }
    }

    /// The explicit entries of the table, for tests and documentation (`outbox-relay` prints it nowhere,
    /// but tests assert every named code).
    public static var explicitEntries: [Int32: DeliveryFailureClass] { table }

    /// Broker unreachable, requests timing out, or the client shut down: nothing is wrong with the record.
    /// `_MSG_TIMED_OUT` is an outage too: a record that sat `message.timeout.ms` without an acknowledgement
    /// almost always means no broker could take it.
    /// `_PURGE_QUEUE`/`_PURGE_INFLIGHT`/`_DESTROY` come from `KafkaProducer.close` giving up on deliveries:
    /// they will be published again by the next relay to hold the lane.
    private static let unreachable: [rd_kafka_resp_err_t] = [
        RD_KAFKA_RESP_ERR__TRANSPORT,
        RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
        RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
        RD_KAFKA_RESP_ERR__TIMED_OUT,
        RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE,
        RD_KAFKA_RESP_ERR__QUEUE_FULL,
        RD_KAFKA_RESP_ERR__RESOLVE,
        RD_KAFKA_RESP_ERR__DESTROY,
        RD_KAFKA_RESP_ERR__PURGE_QUEUE,
        RD_KAFKA_RESP_ERR__PURGE_INFLIGHT,
        RD_KAFKA_RESP_ERR__INTR,
        RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE,
        RD_KAFKA_RESP_ERR__WAIT_COORD,
        RD_KAFKA_RESP_ERR__NODE_UPDATE,
        RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE,
    ]

    /// The producer instance is unusable: an idempotent-producer fatal error (`_FATAL`; the underlying cause is
    /// in `rd_kafka_fatal_error`), a fenced producer, or idempotence state the broker no longer agrees with —
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER` and `UNKNOWN_PRODUCER_ID` (a broker that lost the producer's state, e.g.
    /// a memory-only broker restarted) and `_GAPLESS_GUARANTEE` are fatal-class in librdkafka, not retriable:
    /// retrying on the same producer id cannot succeed in order. Outage (the record is fine) plus
    /// ``requiresNewProducer(_:)``: the relay replaces the producer and publishes the rows again.
    private static let producerUnusable: [rd_kafka_resp_err_t] = [
        RD_KAFKA_RESP_ERR__FATAL,
        RD_KAFKA_RESP_ERR__FENCED,
        RD_KAFKA_RESP_ERR_PRODUCER_FENCED,
        RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
        RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
        RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID,
        RD_KAFKA_RESP_ERR__GAPLESS_GUARANTEE,
    ]

    /// Client-wide misconfiguration (TLS, SASL, ACLs on the cluster, settings the broker does not support):
    /// every record fails the same way, so dead-lettering would empty the outbox into the dead-letter table.
    /// Treated as an outage: the relay stays not-ready and logs the cause until an operator fixes it.
    /// (`CLUSTER_AUTHORIZATION_FAILED` is here, not under permanent: with idempotence it means the
    /// principal lacks `IdempotentWrite` on the cluster, which no single record can fix.)
    private static let misconfigured: [rd_kafka_resp_err_t] = [
        RD_KAFKA_RESP_ERR__SSL,
        RD_KAFKA_RESP_ERR__AUTHENTICATION,
        RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED,
        RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM,
        RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE,
        RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS,
        RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION,
        RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE,
        RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE,
        RD_KAFKA_RESP_ERR__NOT_CONFIGURED,
    ]

    /// Transient partition or cluster state (leader elections, under-replicated partitions, a topic still being
    /// created, a disk error on one broker, a quota): retry this record later, spending an attempt.
    /// `UNKNOWN_TOPIC_OR_PART`/`_UNKNOWN_TOPIC` are retriable so a topic created shortly after its first message
    /// works; the attempt limit turns a topic that never appears into a dead letter ("unknown topic after grace").
    private static let transient: [rd_kafka_resp_err_t] = [
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
        RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC,
        RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION,
        RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
        RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH,
        RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH,
        RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED,
        RD_KAFKA_RESP_ERR__ISR_INSUFF,
        RD_KAFKA_RESP_ERR__RETRY,
        RD_KAFKA_RESP_ERR__FAIL,
        RD_KAFKA_RESP_ERR_UNKNOWN,
    ]

    /// This record can never be delivered as it is: too large (`MSG_SIZE_TOO_LARGE` is also what librdkafka
    /// returns locally when a record exceeds `message.max.bytes`; there is no separate `_MSG_SIZE_TOO_LARGE`
    /// code — a broker-side size refusal is reclassified by `KafkaProducer`, see there), an invalid topic name
    /// (`TOPIC_EXCEPTION`, also used by `KafkaProducer`'s own topic-name check), no permission on its topic,
    /// rejected by broker policy or validation, or corrupt (`INVALID_MSG`, Kafka's `CORRUPT_MESSAGE`: a null
    /// key on a compacted topic; a CRC error in transit would have been retried by librdkafka). Dead-letter it.
    private static let poison: [rd_kafka_resp_err_t] = [
        RD_KAFKA_RESP_ERR_INVALID_MSG,
        RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
        RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE,
        RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_INVALID_RECORD,
        RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION,
        RD_KAFKA_RESP_ERR_POLICY_VIOLATION,
        RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP,
        RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT,
        RD_KAFKA_RESP_ERR__INVALID_ARG,
        RD_KAFKA_RESP_ERR__BAD_MSG,
        RD_KAFKA_RESP_ERR__INVALID_TYPE,
        RD_KAFKA_RESP_ERR__KEY_SERIALIZATION,
        RD_KAFKA_RESP_ERR__VALUE_SERIALIZATION,
    ]

    private static let table: [Int32: DeliveryFailureClass] = {
        var table: [Int32: DeliveryFailureClass] = [:]
        func add(_ codes: [rd_kafka_resp_err_t], _ failureClass: DeliveryFailureClass) {
            for code in codes {
                precondition(table[code.rawValue] == nil, "error code \(code.rawValue) listed twice in KafkaErrorClassifier")
                table[code.rawValue] = failureClass
            }
        }
        add(unreachable, .outage)
        add(producerUnusable, .outage)
        add(misconfigured, .outage)
        add(transient, .retriable)
        add(poison, .permanent)
        return table
    }()
}
