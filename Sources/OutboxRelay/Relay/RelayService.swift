import Logging
import PostgresNIO
import ServiceLifecycle

/// One relay of the fleet, as a ServiceLifecycle service.
///
/// Four tasks run side by side in one task group: the lease keeper (membership, renewal, fair
/// share), the LISTEN wake-up, the monitor (gauges and the health `/readyz` reads), and the batch
/// pipeline. On graceful shutdown (SIGTERM/SIGINT) the
/// pipeline finishes and settles the batch in flight, then every lane is released and the relay
/// leaves the membership, so the rest of the fleet continues at once instead of after a lease TTL.
///
/// The relay owns its Kafka producer (created at start, flushed and closed at the end, replaced
/// after a fatal error). The `PostgresClient` must keep running until this service returns (list
/// it before the relay in the `ServiceGroup`, which shuts services down in reverse order).
public struct RelayService: Service {
    let configuration: RelayConfiguration
    let client: PostgresClient
    let producerConfiguration: KafkaProducerConfiguration
    let identity: RelayIdentity
    let logger: Logger
    let metrics: RelayMetrics
    let health: RelayHealth

    /// - Parameters:
    ///   - metrics: where the relay reports (defaults to the process's bootstrapped swift-metrics backend).
    ///   - health: shared with whatever serves `/readyz`; a private one when nobody asks.
    public init(
        configuration: RelayConfiguration, client: PostgresClient, kafka producerConfiguration: KafkaProducerConfiguration,
        identity: RelayIdentity, logger: Logger, metrics: RelayMetrics = RelayMetrics(), health: RelayHealth = RelayHealth()
    ) {
        self.metrics = metrics
        self.health = health
        self.configuration = configuration
        self.client = client
        self.producerConfiguration = producerConfiguration
        self.identity = identity
        var logger = logger
        logger[metadataKey: "relay"] = "\(configuration.relayID)"
        self.logger = logger
    }

    public func run() async throws {
        let table = LeaseTable()
        let doorbell = Doorbell()
        let store = RelayStore(client: client, schema: configuration.schema, relayID: configuration.relayID)
        let keeper = LeaseKeeper(
            store: store, table: table, doorbell: doorbell, configuration: configuration, identity: identity,
            logger: logger, metrics: metrics)
        let producers = try ProducerSlot(configuration: producerConfiguration, logger: logger)
        let pipeline = BatchPipeline(
            store: store, table: table, doorbell: doorbell, producers: producers,
            builder: EnvelopeBuilder(source: configuration.source, maximumMessageBytes: configuration.maximumMessageBytes),
            configuration: configuration, logger: logger, metrics: metrics, health: health)
        let monitor = RelayMonitor(
            client: client, schema: configuration.schema, table: table, producers: producers, health: health,
            metrics: metrics, interval: RelayMonitor.defaultInterval, logger: logger)
        let listener = NotificationListener(
            client: client, channel: configuration.schema.notificationChannel, doorbell: doorbell, logger: logger)

        let version = try await Migrator(schema: configuration.schema).currentVersion(client: client, logger: logger)
        guard version == Migrator.latestVersion else {
            throw RelayStartupError.schemaVersionMismatch(
                schema: configuration.schema.rawValue, found: version, expected: Migrator.latestVersion)
        }
        logger.info(
            "relay starting",
            metadata: ["schema": "\(configuration.schema)", "batch_size": "\(configuration.batchSize)", "lease_ttl": "\(configuration.leaseTTL)"])
        await keeper.tick()
        await monitor.sample()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await keeper.run() }
            group.addTask { await listener.run() }
            group.addTask { await monitor.run() }
            await withGracefulShutdownHandler {
                await pipeline.run()
            } onGracefulShutdown: {
                health.beginShutdown()
                doorbell.ring()
            }
            group.cancelAll()
        }
        // Every batch was settled before the pipeline returned, so nothing is left to flush.
        await producers.close(flushTimeout: .seconds(5))
        await keeper.releaseAll()
        logger.info("relay stopped")
    }
}

/// Why a relay refused to start.
public enum RelayStartupError: Error, CustomStringConvertible {
    case schemaVersionMismatch(schema: String, found: Int, expected: Int)

    public var description: String {
        switch self {
        case .schemaVersionMismatch(let schema, let found, let expected) where found < expected:
            return "schema \(schema) is at version \(found) but this relay needs \(expected): run `outbox-relay migrate` first"
        case .schemaVersionMismatch(let schema, let found, let expected):
            return "schema \(schema) is at version \(found), newer than this relay (\(expected)): upgrade outbox-relay"
        }
    }
}
