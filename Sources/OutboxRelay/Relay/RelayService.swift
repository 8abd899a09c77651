import Logging
import PostgresNIO
import ServiceLifecycle
import Tracing

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
    let tracer: (any Tracer)?

    /// - Parameters:
    ///   - metrics: where the relay reports (defaults to the process's bootstrapped swift-metrics backend).
    ///   - health: shared with whatever serves `/readyz`; a private one when nobody asks.
    ///   - tracer: where the relay's spans go (a span per published message in the enqueuer's
    ///     trace, see ``RelayTracing``); nil or the no-op tracer: none are made. Passed, not read
    ///     from `InstrumentationSystem`, so a process may run relays traced differently (tests).
    public init(
        configuration: RelayConfiguration, client: PostgresClient, kafka producerConfiguration: KafkaProducerConfiguration,
        identity: RelayIdentity, logger: Logger, metrics: RelayMetrics = RelayMetrics(), health: RelayHealth = RelayHealth(),
        tracer: (any Tracer)? = nil
    ) {
        self.tracer = tracer
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
        var resolved = self.configuration
        let stallLimit = resolved.resolvedStallLimit(messageTimeout: producerConfiguration.messageTimeout)
        resolved.pipelineStallLimit = stallLimit
        let configuration = resolved
        let table = LeaseTable()
        let doorbell = Doorbell()
        let database = BoundedDatabase(client: client, deadline: configuration.statementDeadline, abandoned: metrics.databaseAbandoned)
        let store = RelayStore(database: database, schema: configuration.schema, relayID: configuration.relayID)
        // Resumed by the pipeline when it returns, or by the watchdog when it gave up on it.
        let pipelineEnd = AbandonableCall<Void>()
        var configuredKeeper = LeaseKeeper(
            store: store, table: table, doorbell: doorbell, configuration: configuration, identity: identity,
            logger: logger, metrics: metrics)
        configuredKeeper.health = health
        configuredKeeper.tracing = RelayTracing(tracer)
        configuredKeeper.onStall = { silence in
            pipelineEnd.finish(.failure(RelayStalled(silence: silence, limit: stallLimit)))
        }
        let keeper = configuredKeeper
        let producers = try ProducerSlot(configuration: producerConfiguration, logger: logger)
        let monitor = RelayMonitor(
            database: database, schema: configuration.schema, table: table, producers: producers, health: health,
            metrics: metrics, interval: RelayMonitor.defaultInterval, logger: logger)
        let listener = NotificationListener(
            client: client, channel: configuration.schema.notificationChannel, doorbell: doorbell, logger: logger)

        // No lane is claimed before the broker answered once: a relay that cannot reach it (a wrong
        // address, a cut link) must leave the lanes to the relays that can. The pipeline probes on.
        // The probe runs while the schema is checked, so start-up waits for the longer of the two,
        // not both (a relay joining a fleet or started against a backlog publishes that much sooner).
        health.brokerUnreachable("not reached yet (\(producerConfiguration.bootstrapServers))")
        async let brokerAnswered = producers.current.brokerIsReachable(timeout: .seconds(2))
        // Two statements of the Migrator's own on the pool: bounded as a whole, no connection leased for them.
        let version = try await withDeadline(configuration.statementDeadline, "reading the schema version") { [logger] in
            try await Migrator(schema: configuration.schema).currentVersion(client: client, logger: logger)
        }
        guard version == Migrator.latestVersion else {
            throw RelayStartupError.schemaVersionMismatch(
                schema: configuration.schema.rawValue, found: version, expected: Migrator.latestVersion)
        }
        let source = try await store.recordedSource(wanted: configuration.source ?? RelayConfiguration.defaultSource, logger: logger)
        if let configured = configuration.source, configured != source {
            throw RelayStartupError.sourceMismatch(schema: configuration.schema.rawValue, configured: configured, recorded: source)
        }
        let pipeline = BatchPipeline(
            store: store, table: table, doorbell: doorbell, producers: producers,
            builder: EnvelopeBuilder(source: source, maximumMessageBytes: configuration.maximumMessageBytes, publisher: configuration.relayID),
            configuration: configuration, logger: logger, metrics: metrics, health: health, tracing: RelayTracing(tracer))
        logger.info(
            "relay starting",
            metadata: ["schema": "\(configuration.schema)", "batch_size": "\(configuration.batchSize)", "lease_ttl": "\(configuration.leaseTTL)"])
        if await brokerAnswered {
            health.brokerReachable()
            await keeper.tick()
        }
        // The monitor's first sample (backlog gauges: a count over the outbox) is its task's first
        // step, beside the first batch rather than before it.
        let ended: Result<Void, any Error> = await withTaskGroup(of: Void.self) { group in
            group.addTask { await keeper.run() }
            group.addTask { await listener.run() }
            group.addTask { await monitor.run() }
            // The pipeline runs in a task of its own that this service can walk away from: should
            // one of its awaits outlive every bound (a wedge nobody foresaw), the watchdog ends
            // the wait below instead of leaving a live process that publishes nothing.
            let ended = await withGracefulShutdownHandler { () -> Result<Void, any Error> in
                do {
                    return .success(try await firstResult(of: pipelineEnd) { await pipeline.run() })
                } catch {
                    return .failure(error)
                }
            } onGracefulShutdown: {
                health.beginShutdown()
                doorbell.ring()
            }
            group.cancelAll()
            return ended
        }
        if case .failure(let error) = ended, let stalled = error as? RelayStalled {
            // The watchdog already released the lanes; the producer may still be in use by the
            // abandoned loop, so it is left to the process's exit.
            logger.critical("relay stopped: \(stalled)")
            throw stalled
        }
        // Every batch was settled before the pipeline returned, so nothing is left to flush.
        await producers.close(flushTimeout: .seconds(5))
        await keeper.releaseAll()
        logger.info("relay stopped")
    }
}

/// The watchdog found the batch loop silent past its limit and gave up on it: the relay's lanes
/// were handed back and the relay ends with this error, so whatever supervises it restarts it.
public struct RelayStalled: Error, CustomStringConvertible, Sendable {
    public var silence: Duration
    public var limit: Duration
    public var description: String {
        "the batch loop made no progress for \(silence) (limit \(limit)); its lanes were handed to the rest of the fleet — restart the relay (a supervisor does this by itself)"
    }
}

/// Why a relay refused to start.
public enum RelayStartupError: Error, CustomStringConvertible {
    case schemaVersionMismatch(schema: String, found: Int, expected: Int)
    case sourceMismatch(schema: String, configured: String, recorded: String)

    public var description: String {
        switch self {
        case .schemaVersionMismatch(let schema, let found, let expected) where found < expected:
            return "schema \(schema) is at version \(found) but this relay needs \(expected): run `outbox-relay migrate` first"
        case .schemaVersionMismatch(let schema, let found, let expected):
            return "schema \(schema) is at version \(found), newer than this relay (\(expected)): upgrade outbox-relay"
        case .sourceMismatch(let schema, let configured, let recorded):
            return "OUTBOX_SOURCE is \(String(reflecting: configured)) but the outbox in schema \(schema) publishes as"
                + " \(String(reflecting: recorded)) (recorded in \(schema).identity by its first relay): envelope ids are"
                + " <source>/<outbox id> and consumers deduplicate on them, so every relay must use the same source."
                + " Unset OUTBOX_SOURCE (or set it to \(String(reflecting: recorded))); to change the source for all relays,"
                + " UPDATE \(schema).identity SET source = '\(configured.replacingOccurrences(of: "'", with: "''"))'"
                + " (every id changes from then on)"
        }
    }
}
