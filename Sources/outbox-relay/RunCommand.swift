import ArgumentParser
import Foundation
import Logging
import OutboxRelay
import PostgresNIO
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
    @Flag(name: .customLong("stop-when-drained"), help: "Exit 0 once the outbox is empty (demos, benchmarks).")
    var stopWhenDrained = false

    func run() async throws {
        var settings = try global.settings(extra: [
            "OUTBOX_RELAY_ID": relayID, "OUTBOX_SOURCE": source, "OUTBOX_BATCH_SIZE": batchSize,
            "OUTBOX_LEASE_TTL": leaseTTL, "OUTBOX_RENEW_INTERVAL": renewInterval, "OUTBOX_POLL_INTERVAL": pollInterval,
            "OUTBOX_MAX_MESSAGE_BYTES": maxMessageBytes, "OUTBOX_MAX_ATTEMPTS": maxAttempts,
            "OUTBOX_RETRY_BASE": retryBase, "OUTBOX_RETRY_MAX": retryMax,
            "OUTBOX_KAFKA_MESSAGE_TIMEOUT": kafkaMessageTimeout,
        ])
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
        do {
            try await DatabaseProbe.check(settings.database, logger: logger)
        } catch {
            throw CommandFailure.exit(error, settings: settings)
        }
        let client = PostgresClient(configuration: settings.database.clientConfiguration(), backgroundLogger: logger)
        let relay = RelayService(
            configuration: settings.relay, client: client, kafka: kafka,
            identity: RelayIdentity(
                host: ProcessInfo.processInfo.hostName, pid: ProcessInfo.processInfo.processIdentifier,
                version: RelayVersion.current),
            logger: logger)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: client),
                    .init(
                        service: relay, successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch {
            throw CommandFailure.exit(error, settings: settings)
        }
    }

}
