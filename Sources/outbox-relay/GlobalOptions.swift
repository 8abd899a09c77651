import ArgumentParser
import Foundation
import Logging
import OutboxRelay

/// The options every subcommand shares. They overlay the `OUTBOX_*` environment: a flag given on
/// the command line wins over the variable of the same name.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: "PostgreSQL URL (OUTBOX_DATABASE_URL).")
    var databaseURL: String?

    @Option(help: "Schema of the outbox tables (OUTBOX_SCHEMA, default outbox).")
    var schema: String?

    @Option(name: .customLong("kafka-brokers"), help: "Kafka bootstrap servers host:port,... (OUTBOX_KAFKA_BROKERS).")
    var kafkaBrokers: String?

    @Option(
        name: .customLong("kafka-property"),
        help: "A librdkafka property name=value, repeatable (OUTBOX_KAFKA_PROPERTIES), e.g. security.protocol=SSL.")
    var kafkaProperties: [String] = []

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error (OUTBOX_LOG_LEVEL).")
    var logLevel: String?

    /// The flat settings map: environment first, then these flags, then `extra` (a command's own flags).
    func values(extra: [String: String?] = [:]) -> [String: String] {
        var values = ProcessInfo.processInfo.environment.filter { RelaySettings.knownNames.contains($0.key) }
        func put(_ name: String, _ value: String?) {
            if let value { values[name] = value }
        }
        put("OUTBOX_DATABASE_URL", databaseURL)
        put("OUTBOX_SCHEMA", schema)
        put("OUTBOX_KAFKA_BROKERS", kafkaBrokers)
        put("OUTBOX_LOG_LEVEL", logLevel)
        if !kafkaProperties.isEmpty {
            values["OUTBOX_KAFKA_PROPERTIES"] = ([values["OUTBOX_KAFKA_PROPERTIES"]].compactMap { $0 } + kafkaProperties)
                .joined(separator: "\n")
        }
        for (name, value) in extra { put(name, value) }
        return values
    }

    /// Parses and validates the settings and sets up logging, or exits with the setting's error.
    func settings(extra: [String: String?] = [:]) throws -> RelaySettings {
        let settings: RelaySettings
        do {
            settings = try RelaySettings(values: values(extra: extra))
        } catch {
            CommandFailure.report(error.description)
            throw ExitCode(2)
        }
        bootstrapLogging(level: Logger.Level(rawValue: settings.logLevel) ?? .info)
        return settings
    }
}
