import ArgumentParser

@main
struct OutboxRelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox-relay",
        abstract: "Publishes messages from a PostgreSQL transactional outbox to Kafka, reliably and in key order.",
        discussion: """
            Every setting can be given as a flag, an OUTBOX_* environment variable or a key in a YAML/JSON
            file named by --config (flags win over variables, variables over the file), e.g.
            --database-url / OUTBOX_DATABASE_URL / database.url. `outbox-relay config check` shows the
            effective values and their sources; docs/configuration.md lists every setting.
            """,
        version: RelayVersion.current,
        subcommands: [
            MigrateCommand.self, RunCommand.self, EnqueueCommand.self, StatusCommand.self, PeekCommand.self, DeadLetterCommand.self,
            ConfigCommand.self, ConsoleCommand.self,
        ]
    )
}

enum RelayVersion {
    static let current = "0.1.0"
}
