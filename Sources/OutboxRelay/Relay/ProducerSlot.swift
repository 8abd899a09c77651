import Logging
import Synchronization

/// The relay's Kafka producer, replaceable.
///
/// librdkafka can declare an idempotent producer unusable (a fatal error, e.g. after a broker lost
/// the producer's sequence state — which a memory-only broker does on every restart). Every later
/// send then fails as an outage, so the relay would pause forever; instead the pipeline asks this
/// slot to swap in a fresh producer while it waits for the broker.
final class ProducerSlot: Sendable {
    private let producer: Mutex<KafkaProducer>
    private let configuration: KafkaProducerConfiguration
    private let logger: Logger

    init(configuration: KafkaProducerConfiguration, logger: Logger) throws(KafkaClientError) {
        self.configuration = configuration
        self.logger = logger
        self.producer = Mutex(try KafkaProducer(configuration: configuration, logger: logger))
    }

    var current: KafkaProducer { producer.withLock { $0 } }

    /// Replaces the producer if librdkafka declared it unusable; returns whether it did.
    @discardableResult
    func replaceIfFatal() async -> Bool {
        guard let fatal = current.fatalError else { return false }
        return await replace(because: "fatal error: \(fatal)")
    }

    /// Replaces the producer whatever librdkafka thinks of it: for a producer whose deliveries keep
    /// timing out although the broker answers (seen after a memory-only broker restarted: the old
    /// producer id is unknown to it, and some producers are never declared fatal, only time out).
    /// A fresh producer gets a new id; the rows of failed deliveries are still in the outbox.
    /// Returns whether a new producer is in place.
    @discardableResult
    func replace(because reason: String) async -> Bool {
        let old = current
        do {
            let fresh = try KafkaProducer(configuration: configuration, logger: logger)
            producer.withLock { $0 = fresh }
            logger.warning("replaced the Kafka producer", metadata: ["reason": "\(reason)"])
            await old.close(flushTimeout: .zero)
            return true
        } catch {
            logger.error("could not create a new Kafka producer", metadata: ["error": "\(error)"])
            return false
        }
    }

    func close(flushTimeout: Duration) async {
        await current.close(flushTimeout: flushTimeout)
    }
}
