import CRdKafka

/// What the relay does with a failed delivery. See `KafkaErrorClassifier` for the table.
public enum DeliveryFailureClass: String, Sendable {
    /// The broker (or the path to it, or the client itself) is unavailable or misconfigured; the record is
    /// not at fault. Pause and wait for the broker; spend no attempt; never dead-letter.
    case outage
    /// This record failed but may succeed later: spend an attempt and retry with backoff; after the
    /// maximum number of attempts it is dead-lettered.
    case retriable
    /// This record can never be delivered (too large, invalid topic, not authorised, ...): dead-letter it.
    case permanent
}

/// Why one record was not delivered.
public struct DeliveryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The raw `rd_kafka_resp_err_t` value.
    public var code: Int32
    /// `rd_kafka_err2name`, e.g. `MSG_SIZE_TOO_LARGE` or `_MSG_TIMED_OUT`: stable, fit for metrics labels
    /// and the dead-letter `reason`.
    public var name: String
    /// `rd_kafka_err2str` plus context (topic, local or broker side), for people.
    public var message: String
    public var failureClass: DeliveryFailureClass

    public init(code: Int32, name: String, message: String, failureClass: DeliveryFailureClass) {
        self.code = code
        self.name = name
        self.message = message
        self.failureClass = failureClass
    }

    /// Builds the error for a librdkafka code: name, text and class all come from the code.
    /// `context` is appended to librdkafka's text, e.g. `topic "orders"`.
    public init(code: Int32, context: String? = nil) {
        let err = rd_kafka_resp_err_t(rawValue: code)
        let name = String(cString: rd_kafka_err2name(err))
        let text = String(cString: rd_kafka_err2str(err))
        self.init(
            code: code,
            name: name,
            message: context.map { "\(text) (\($0))" } ?? text,
            failureClass: KafkaErrorClassifier.classify(code)
        )
    }

    /// The producer that reported this is unusable and must be replaced (see
    /// `KafkaErrorClassifier.requiresNewProducer`).
    public var requiresNewProducer: Bool { KafkaErrorClassifier.requiresNewProducer(code) }

    public var description: String { "\(name) [\(failureClass.rawValue)]: \(message)" }
}
