import ArgumentParser
import Foundation
import Logging
import Metrics
import OutboxRelay
import PostgresNIO
import Prometheus
import ServiceLifecycle

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a relay: lease lanes, publish their messages to Kafka, until SIGTERM/SIGINT.")

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("relay-id"), help: "Unique name of this relay (OUTBOX_RELAY_ID; default host-pid-random).")
    var relayID: String?
    @Option(help: "Envelope source and id prefix (OUTBOX_SOURCE, default outbox).")
    var source: String?
    @Option(name: .customLong("batch-size"), help: "Messages per batch (OUTBOX_BATCH_SIZE, default 1000).")
    var batchSize: String?
    @Option(name: .customLong("lease-ttl"), help: "Lane lease lifetime (OUTBOX_LEASE_TTL, default 15s).")
    var leaseTTL: String?
    @Option(name: .customLong("renew-interval"), help: "Lease renewal period (OUTBOX_RENEW_INTERVAL, default 5s).")
    var renewInterval: String?
    @Option(name: .customLong("poll-interval"), help: "Idle poll period (OUTBOX_POLL_INTERVAL, default 1s).")
    var pollInterval: String?
    @Option(name: .customLong("max-message-bytes"), help: "Largest encoded envelope (OUTBOX_MAX_MESSAGE_BYTES, default 1000000).")
    var maxMessageBytes: String?
    @Option(name: .customLong("max-attempts"), help: "Attempts before dead-lettering (OUTBOX_MAX_ATTEMPTS, default 10).")
    var maxAttempts: String?
    @Option(name: .customLong("retry-base"), help: "First retry delay bound (OUTBOX_RETRY_BASE, default 500ms).")
    var retryBase: String?
    @Option(name: .customLong("retry-max"), help: "Largest retry delay (OUTBOX_RETRY_MAX, default 60s).")
    var retryMax: String?
    @Option(name: .customLong("kafka-message-timeout"), help: "librdkafka delivery timeout (OUTBOX_KAFKA_MESSAGE_TIMEOUT, default 30s).")
    var kafkaMessageTimeout: String?
    @Option(
        name: .customLong("http-address"),
        help: "host:port of /healthz, /readyz and /metrics, or off (OUTBOX_HTTP_ADDRESS, default 127.0.0.1:9464).")
    var httpAddress: String?
    @Flag(name: .customLong("stop-when-drained"), help: "Exit 0 once the outbox is empty (demos, benchmarks).")
    var stopWhenDrained = false

    func run() async throws {
        var settings = try global.settings(extra: [
            "OUTBOX_RELAY_ID": relayID, "OUTBOX_SOURCE": source, "OUTBOX_BATCH_SIZE": batchSize,
            "OUTBOX_LEASE_TTL": leaseTTL, "OUTBOX_RENEW_INTERVAL": renewInterval, "OUTBOX_POLL_INTERVAL": pollInterval,
            "OUTBOX_MAX_MESSAGE_BYTES": maxMessageBytes, "OUTBOX_MAX_ATTEMPTS": maxAttempts,
            "OUTBOX_RETRY_BASE": retryBase, "OUTBOX_RETRY_MAX": retryMax,
            "OUTBOX_KAFKA_MESSAGE_TIMEOUT": kafkaMessageTimeout, "OUTBOX_HTTP_ADDRESS": httpAddress,
        ])
        settings.relay.stopWhenDrained = stopWhenDrained
        // A batch may legitimately wait a whole delivery timeout, plus database time.
        settings.relay.pipelineStallLimit = settings.kafkaMessageTimeout + settings.relay.leaseTTL * 2 + .seconds(10)
        let logger = Logger(label: "outbox-relay")
        let brokers: String
        do {
            brokers = try settings.requireKafkaBrokers()
        } catch {
            CommandFailure.report(error.description)
            throw ExitCode(2)
        }
        let kafka = KafkaProducerConfiguration(
            bootstrapServers: brokers, properties: settings.kafkaProperties, messageTimeout: settings.kafkaMessageTimeout)
        do {
            try Librdkafka.requireSupportedVersion()
            try kafka.validate()
        } catch {
            CommandFailure.report(error.description)
            throw ExitCode(2)
        }
        do {
            try await DatabaseProbe.check(settings.database, logger: logger)
        } catch {
            throw CommandFailure.exit(error, settings: settings)
        }
        let client = PostgresClient(configuration: settings.database.clientConfiguration(), backgroundLogger: logger)
        let registry = Self.bootstrapPrometheus()
        let health = RelayHealth()
        let relay = RelayService(
            configuration: settings.relay, client: client, kafka: kafka,
            identity: RelayIdentity(
                host: ProcessInfo.processInfo.hostName, pid: ProcessInfo.processInfo.processIdentifier,
                version: RelayVersion.current),
            logger: logger, metrics: RelayMetrics(), health: health)
        // Before the relay: ServiceGroup stops services in reverse order, so the endpoints keep
        // answering ("shutting down", last metric values) until the relay has settled and released.
        let http: [ServiceGroupConfiguration.ServiceConfiguration] = settings.httpAddress.map { address in
            [.init(service: RelayHTTPServer(address: address, health: health, logger: logger) { registry.emitToString() })]
        } ?? []
        var groupConfiguration = ServiceGroupConfiguration(
            services: [
                .init(service: client)
            ] + http + [
                .init(
                    service: relay, successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        // A graceful stop waits for the batch in flight (at most a delivery timeout); past that the
        // relay is cancelled, and if something still does not return, ServiceLifecycle ends the
        // process rather than leave a relay that neither works nor exits.
        groupConfiguration.maximumGracefulShutdownDuration = settings.kafkaMessageTimeout + .seconds(15)
        groupConfiguration.maximumCancellationDuration = .seconds(10)
        let group = ServiceGroup(configuration: groupConfiguration)
        do {
            try await group.run()
        } catch {
            throw CommandFailure.exit(error, settings: settings)
        }
    }

    /// Makes Prometheus the process's swift-metrics backend (once: `run` is the only command that
    /// reports metrics) with buckets that suit the relay, and returns the registry `/metrics` serves.
    private static func bootstrapPrometheus() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[RelayMetrics.Name.commitToAck] = RelayMetrics.commitToAckBuckets
        factory.valueHistogramBuckets[RelayMetrics.Name.batchSize] = RelayMetrics.batchSizeBuckets
        MetricsSystem.bootstrap(factory)
        return registry
    }
}
