import ArgumentParser
import Logging
import OutboxRelay

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade the outbox schema (idempotent; safe to run from many places at once).")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let settings = try await global.settings()
        let logger = Logger(label: "outbox-relay.migrate")
        do {
            let schema = settings.relay.schema
            let applied = try await withPostgresClient(settings, logger: logger) { client in
                try await Migrator(schema: schema).migrate(client: client, logger: logger)
            }
            if applied.isEmpty {
                print("schema \(schema): up to date at version \(Migrator.latestVersion)")
            } else {
                print("schema \(schema): applied version(s) \(applied.map(String.init).joined(separator: ", ")); now at \(Migrator.latestVersion)")
            }
        } catch {
            throw CommandFailure.exit(error, settings: settings)
        }
    }
}
