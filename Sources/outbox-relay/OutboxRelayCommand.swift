import ArgumentParser

@main
struct OutboxRelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox-relay",
        abstract: "Publishes messages from a PostgreSQL transactional outbox to Kafka, reliably and in key order.",
        discussion: """
            Every setting can be given as a flag or as an OUTBOX_* environment variable (flags win),
            e.g. --database-url / OUTBOX_DATABASE_URL, --kafka-brokers / OUTBOX_KAFKA_BROKERS.
            """,
        version: RelayVersion.current,
        subcommands: [MigrateCommand.self, RunCommand.self, EnqueueCommand.self, StatusCommand.self, PeekCommand.self, DeadLetterCommand.self]
    )
}

enum RelayVersion {
    static let current = "0.1.0"
}
