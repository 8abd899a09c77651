import ArgumentParser
import Foundation
import Logging
import OutboxRelay

/// The options every subcommand shares. They overlay the `OUTBOX_*` environment, which overlays
/// the optional configuration file: flag > environment variable > file key > default.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .customLong("config"),
        help: "YAML (.yaml/.yml) or JSON (.json) configuration file; flags and OUTBOX_* variables win over it (OUTBOX_CONFIG).")
    var configPath: String?

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

    @Option(name: .customLong("log-format"), help: "text or json: one JSON object per log line on stderr (OUTBOX_LOG_FORMAT, default text).")
    var logFormat: String?

    /// What the loader layers: these flags plus `extra` (a command's own flags, by `OUTBOX_*` name).
    func input(extra: [String: String?] = [:]) -> SettingsInput {
        var flags: [String: String] = [:]
        func put(_ name: String, _ value: String?) {
            if let value { flags[name] = value }
        }
        put("OUTBOX_DATABASE_URL", databaseURL)
        put("OUTBOX_SCHEMA", schema)
        put("OUTBOX_KAFKA_BROKERS", kafkaBrokers)
        put("OUTBOX_LOG_LEVEL", logLevel)
        put("OUTBOX_LOG_FORMAT", logFormat)
        for (name, value) in extra { put(name, value) }
        return SettingsInput(
            flags: flags, kafkaPropertyFlags: kafkaProperties, environment: ProcessInfo.processInfo.environment,
            configPath: configPath)
    }

    /// Loads, layers and validates the settings, or reports the one-line error and exits with 2.
    func effectiveSettings(extra: [String: String?] = [:]) async throws -> EffectiveSettings {
        do {
            return try await SettingsLoader.load(input(extra: extra))
        } catch {
            CommandFailure.report(error.description)
            throw ExitCode(2)
        }
    }

    /// Parses and validates the settings and sets up logging, or exits with the setting's error.
    func settings(extra: [String: String?] = [:]) async throws -> RelaySettings {
        let settings = try await effectiveSettings(extra: extra).settings
        bootstrapLogging(level: Logger.Level(rawValue: settings.logLevel) ?? .info, format: settings.logFormat)
        return settings
    }
}
