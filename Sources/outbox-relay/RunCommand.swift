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

    @OptionGroup var options: RelayOptions
    @Flag(name: .customLong("stop-when-drained"), help: "Exit 0 once the outbox is empty (demos, benchmarks).")
    var stopWhenDrained = false

    func run() async throws {
        var settings = try await global.settings(extra: options.values)
        settings.relay.stopWhenDrained = stopWhenDrained
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
        let identity = RelayIdentity(
            host: ProcessInfo.processInfo.hostName, pid: ProcessInfo.processInfo.processIdentifier,
            version: RelayVersion.current)
        let telemetry: TelemetryBackends
        do {
            let export = try TelemetryExport.from(environment: ProcessInfo.processInfo.environment)
            telemetry = try TelemetryBackends.make(export, relayID: settings.relay.relayID, identity: identity, logger: logger)
        } catch let error as TelemetryExportError {
            CommandFailure.report(error.description)
            throw ExitCode(2)
        } catch {
            CommandFailure.report("the OTLP exporter could not be set up from the OTEL_* settings: \(error)")
            throw ExitCode(2)
        }
        do {
            try await DatabaseProbe.check(settings.database, logger: logger)
        } catch {
            throw CommandFailure.exit(error, settings: settings)
        }
        // Only the relay's own sessions get the statement and lock timeouts: `migrate` and the
        // dead-letter tools may legitimately run longer statements.
        let client = PostgresClient(
            configuration: settings.databaseSession.applied(to: settings.database.clientConfiguration()), backgroundLogger: logger)
        let registry = Self.bootstrapMetrics(besides: telemetry.metrics)
        let health = RelayHealth()
        let relay = RelayService(
            configuration: settings.relay, client: client, kafka: kafka, identity: identity,
            logger: logger, metrics: RelayMetrics(), health: health, tracer: telemetry.tracer)
        // Before the relay: ServiceGroup stops services in reverse order, so the endpoints keep
        // answering ("shutting down", last metric values) until the relay has settled and released.
        let http: [ServiceGroupConfiguration.ServiceConfiguration] = settings.httpAddress.map { address in
            [.init(service: RelayHTTPServer(address: address, health: health, logger: logger) { registry.emitToString() })]
        } ?? []
        // The exporter first, so it is stopped last: it flushes the spans of the relay's final batch.
        // Whatever becomes of it, the relay goes on: telemetry must never stop the publishing.
        let exporter: [ServiceGroupConfiguration.ServiceConfiguration] = telemetry.service.map {
            [.init(service: $0, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore)]
        } ?? []
        var groupConfiguration = ServiceGroupConfiguration(
            services: exporter + [
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
        } catch let stalled as RelayStalled {
            logger.critical("exiting with status 3 so the supervisor restarts the relay", metadata: ["reason": "\(stalled)"])
            throw ExitCode(3)
        } catch {
            throw CommandFailure.exit(error, settings: settings)
        }
    }

    /// Makes Prometheus the process's swift-metrics backend (once: `run` is the only command that
    /// reports metrics) with buckets that suit the relay, and returns the registry `/metrics` serves.
    /// With an OTLP metrics exporter (`OTEL_METRICS_EXPORTER=otlp`) every metric goes to both.
    private static func bootstrapMetrics(besides otlp: (any MetricsFactory)?) -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[RelayMetrics.Name.commitToAck] = RelayMetrics.commitToAckBuckets
        factory.valueHistogramBuckets[RelayMetrics.Name.batchSize] = RelayMetrics.batchSizeBuckets
        if let otlp {
            MetricsSystem.bootstrap(MultiplexMetricsHandler(factories: [factory, otlp]))
        } else {
            MetricsSystem.bootstrap(factory)
        }
        return registry
    }
}
