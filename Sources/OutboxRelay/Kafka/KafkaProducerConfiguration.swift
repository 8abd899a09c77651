/// How to build the relay's producer.
///
/// The defaults are the relay's delivery guarantees (no loss, per-key order, no duplicates from retries)
/// plus throughput settings; ``properties`` are applied after them, so a user can override any of them
/// (TLS, SASL, tuning). Overriding a guarantee (`acks`, `enable.idempotence`) is allowed but logged as a warning.
public struct KafkaProducerConfiguration: Sendable {
    /// `bootstrap.servers`, e.g. `127.0.0.1:19092` or `b1:9092,b2:9092`.
    public var bootstrapServers: String
    /// Pass-through librdkafka properties (the user's `kafka.*` settings, TLS, SASL, ...), applied after defaults.
    /// Values of sensitive properties (see ``KafkaSecretProperties``) are never logged or echoed in errors.
    public var properties: [String: String]
    /// The delivery timeout: how long ``KafkaProducer/send(_:until:abandonWhen:)`` waits for delivery
    /// reports by default before it purges what is outstanding (an outage). librdkafka's own
    /// `message.timeout.ms` is set longer (``librdkafkaMessageTimeout``) so it never fails records
    /// first: its timeouts leave gaps, the purge does not.
    public var messageTimeout: Duration

    public init(bootstrapServers: String, properties: [String: String] = [:], messageTimeout: Duration = .seconds(30)) {
        self.bootstrapServers = bootstrapServers
        self.properties = properties
        self.messageTimeout = messageTimeout
    }

    /// The relay's defaults, in the order they are applied.
    ///
    /// - `enable.idempotence=true`, `acks=all`: no loss and no reordering or duplicates from librdkafka's own retries
    ///   (idempotence also caps `max.in.flight` at 5 and keeps per-partition order across retries).
    /// - `enable.gapless.guarantee=true`: when the broker refuses one produce request (a record it will not take,
    ///   a size limit), librdkafka would otherwise go on writing the requests behind it — later messages of the
    ///   same keys published, an earlier one not. With it the producer stops instead (fatal `_GAPLESS_GUARANTEE`):
    ///   the refused records get the broker's error (dead letter or retry), everything behind them fails as an
    ///   outage, the relay replaces the producer and publishes them again in order. (Timeouts are outside that
    ///   guarantee; the relay never lets librdkafka time out, see `KafkaProducer.send(_:until:abandonWhen:)`.)
    /// - `partitioner=murmur2_random`: the same partition the Java client picks for a key, so consumers and
    ///   other producers agree; records without a key spread randomly.
    /// - `compression.type=lz4`, `linger.ms=1`: cheap compression; a relay hands librdkafka a whole batch at once
    ///   and waits for it, so lingering only delays every batch — librdkafka's 5 ms default cost a third of the
    ///   drain throughput (1 relay, 200,000 × 256 B: 55–78k msg/s at 5 ms, 80–86k at 0, 92k at 1; the extra
    ///   millisecond lets a batch's records fill requests instead of the first one going out alone).
    /// - `queue.buffering.max.messages=500000`, `batch.num.messages=10000`: room for several relay batches in
    ///   flight at > 50k msg/s without `_QUEUE_FULL` stalls, and large produce requests.
    /// - `log.connection.close=false`: idle connections closed by the broker are normal, not worth a log line.
    public static let defaultProperties: [(name: String, value: String)] = [
        ("enable.idempotence", "true"),
        ("enable.gapless.guarantee", "true"),
        ("acks", "all"),
        ("compression.type", "lz4"),
        ("linger.ms", "1"),
        ("partitioner", "murmur2_random"),
        ("queue.buffering.max.messages", "500000"),
        ("batch.num.messages", "10000"),
        ("log.connection.close", "false"),
        ("client.id", "outbox-relay"),
    ]

    /// Properties a user may not set because the producer relies on their default behaviour:
    /// with `delivery.report.only.error=true` successful deliveries would never be reported and
    /// ``KafkaProducer/send(_:)`` would wait for them forever.
    public static let forbiddenProperties: [String: String] = [
        "delivery.report.only.error": "the relay needs a delivery report for every record to know it may delete the outbox row",
        "transactional.id": "the relay produces idempotently, not transactionally (and Tansu's transactions are not isolated)",
    ]

    /// Every property handed to librdkafka, in order: `bootstrap.servers`, the defaults, `message.timeout.ms`,
    /// then the user's ``properties`` sorted by name (later entries win).
    public var librdkafkaProperties: [(name: String, value: String)] {
        var result: [(name: String, value: String)] = [("bootstrap.servers", bootstrapServers)]
        result += Self.defaultProperties
        result.append(("message.timeout.ms", String(Self.milliseconds(librdkafkaMessageTimeout))))
        result += properties.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
        return result
    }

    /// librdkafka's `message.timeout.ms`: a backstop only, well past the relay's own deadline (the
    /// delivery timeout, or a lease running out sooner) so the relay's purge always comes first.
    public var librdkafkaMessageTimeout: Duration { messageTimeout * 2 + .seconds(60) }

    /// How long records left in flight by a send that returned early (stragglers) may stay there,
    /// from their enqueue: past the delivery timeout, since only their own keys wait for them, but
    /// 30 s before librdkafka's own timeout, which must never fire first (its timeouts leave gaps).
    public var stragglerTimeout: Duration { librdkafkaMessageTimeout - .seconds(30) }

    /// Checks every property against librdkafka without creating a client (no network), so configuration errors
    /// surface at start-up with the property's name.
    public func validate() throws(KafkaClientError) {
        let conf = try KafkaConf.make(librdkafkaProperties, forbidden: Self.forbiddenProperties)
        conf.destroy()
    }

    /// `Duration` → whole milliseconds, at least 1 (librdkafka treats 0 as "infinite" for several timeouts).
    static func milliseconds(_ duration: Duration) -> Int64 {
        max(1, duration.milliseconds)
    }
}
