import ArgumentParser
import Foundation
import OutboxRelay

/// Validates the configuration exactly as `run` would (same flags, same layering, same checks,
/// including the librdkafka properties) without connecting to anything, and shows where every
/// value came from. Secrets are always redacted.
struct ConfigCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the settings without connecting; print each effective value and its source (default, file, env, flag).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: RelayOptions
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        let effective = try await global.effectiveSettings(extra: options.values)
        if effective.settings.kafkaBrokers == nil {
            // Not an error: migrate, status and dlq work without brokers. But say so before `run` does.
            CommandFailure.report("note: kafka.brokers (OUTBOX_KAFKA_BROKERS, --kafka-brokers) is not set; run and peek need it")
        }
        if let brokers = effective.settings.kafkaBrokers {
            let kafka = KafkaProducerConfiguration(
                bootstrapServers: brokers, properties: effective.settings.kafkaProperties,
                messageTimeout: effective.settings.kafkaMessageTimeout)
            do {
                try kafka.validate()
            } catch {
                CommandFailure.report(error.description)
                throw ExitCode(2)
            }
        }
        print(json ? effective.json() : effective.table())
    }
}

/// Prints the Markdown table of every setting (file key, variable, flag, default), the one that
/// docs/configuration.md embeds.
struct ConfigReferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reference",
        abstract: "Print the Markdown reference table of every setting (as in docs/configuration.md).")

    func run() {
        print(SettingsReference.markdownTable())
    }
}
