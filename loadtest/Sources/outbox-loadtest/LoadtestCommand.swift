import ArgumentParser

@main
struct LoadtestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox-loadtest",
        abstract: "Measures outbox-relay against a PostgreSQL outbox and a Kafka broker, and proves with a ledger that nothing was lost or reordered.",
        discussion: """
            Uses the same settings as the relay: OUTBOX_DATABASE_URL, OUTBOX_KAFKA_BROKERS (eval "$(scripts/services env)"
            for the local services). Relays are started as separate outbox-relay processes found next to this binary.
            """,
        subcommands: [DrainCommand.self, SteadyCommand.self, ChaosCommand.self, CeilingCommand.self]
    )
}
