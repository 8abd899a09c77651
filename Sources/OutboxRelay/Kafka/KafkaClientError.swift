/// Errors of setting up or using a Kafka client as a whole (as opposed to ``DeliveryError``, which is per record).
/// Each description says what to do next.
public enum KafkaClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The librdkafka loaded at run time is too old (see ``Librdkafka/minimumVersion``).
    case unsupportedLibrdkafkaVersion(found: String, required: String)
    /// librdkafka rejected a configuration property (unknown name or invalid value). `reason` is librdkafka's
    /// text, except for secrets, whose values are never repeated.
    case invalidProperty(name: String, reason: String)
    /// `rd_kafka_new` failed (e.g. an unreadable TLS certificate file).
    case creationFailed(reason: String)
    /// A metadata request failed (broker unreachable, topic not readable, ...).
    case metadataFailed(topic: String?, code: Int32, reason: String)
    /// Assigning the partitions to read failed.
    case assignFailed(topic: String, reason: String)
    /// Reading a topic to its end did not finish in time.
    case readTimedOut(topic: String, partitionsAtEnd: Int, partitions: Int, recordsRead: Int)
    /// A consumed message carried an error other than partition EOF.
    case consumeFailed(topic: String, code: Int32, reason: String)

    public var description: String {
        switch self {
        case .unsupportedLibrdkafkaVersion(let found, let required):
            return "librdkafka \(found) is loaded but outbox-relay needs ≥ \(required) (older versions cannot parse "
                + "tagged fields of modern brokers); run scripts/bootstrap and put .local/lib first on LD_LIBRARY_PATH "
                + "(eval \"$(scripts/services env)\")"
        case .invalidProperty(let name, let reason):
            return "Kafka property \"\(name)\" was rejected by librdkafka: \(reason); fix or remove it (the relay "
                + "passes kafka.* settings to librdkafka as they are; see librdkafka's CONFIGURATION.md for valid names and values)"
        case .creationFailed(let reason):
            return "could not create the Kafka client: \(reason); check the kafka.* settings (bootstrap servers, TLS files, SASL)"
        case .metadataFailed(let topic, _, let reason):
            let what = topic.map { "topic \"\($0)\"" } ?? "the cluster"
            return "could not fetch Kafka metadata for \(what): \(reason); check that the broker is up and reachable "
                + "at the configured bootstrap servers (scripts/services status) and that the credentials may describe it"
        case .assignFailed(let topic, let reason):
            return "could not assign the partitions of topic \"\(topic)\": \(reason); check the broker logs"
        case .readTimedOut(let topic, let atEnd, let partitions, let records):
            return "reading topic \"\(topic)\" did not reach the end of every partition in time (\(atEnd) of \(partitions) "
                + "partitions at their end, \(records) records read); raise the timeout or check that the broker is healthy"
        case .consumeFailed(let topic, _, let reason):
            return "reading topic \"\(topic)\" failed: \(reason); check the broker and the client settings"
        }
    }
}
