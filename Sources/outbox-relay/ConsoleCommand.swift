import ArgumentParser
import Foundation
import Logging
import OutboxConsole
import OutboxRelay
import PostgresNIO
import ServiceLifecycle

struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Serve the operator console: the fleet and the dead letters in a browser, and as JSON under /api/.",
        discussion: """
            Run it with the admin role's database URL (replay and purge write the outbox); relays keep \
            their own role. Listens on 127.0.0.1:9465 unless --listen says otherwise; any address but \
            loopback needs --token (OUTBOX_CONSOLE_TOKEN), and then every request needs it: browsers \
            sign in once on /login, scripts send Authorization: Bearer <token>. --read-only offers and \
            allows no replay or purge. Stops on SIGTERM/SIGINT.
            """)

    @OptionGroup var global: GlobalOptions
    @Option(name: .customLong("listen"), help: "host:port to serve on (OUTBOX_CONSOLE_ADDRESS, default 127.0.0.1:9465).")
    var listen: String?
    @Option(help: "Require this secret on every request (OUTBOX_CONSOLE_TOKEN); needed to listen beyond loopback. Prefer the variable: a flag shows in ps.")
    var token: String?
    @Flag(name: .customLong("read-only"), help: "Offer and allow no replay or purge (OUTBOX_CONSOLE_READ_ONLY=true).")
    var readOnly = false
    @Option(help: "How often the fleet page refreshes and throughput is sampled, e.g. 5s (OUTBOX_CONSOLE_REFRESH).")
    var refresh: String?

    func run() async throws {
        let settings = try await global.settings()
        let logger = Logger(label: "outbox-relay.console")
        let console: ConsoleSettings
        do {
            console = try consoleSettings(environment: ProcessInfo.processInfo.environment, leaseTTL: settings.relay.leaseTTL)
            try console.validate()
        } catch {
            CommandFailure.report("\(error)")
            throw ExitCode(2)
        }
        let schema = settings.relay.schema
        do {
            // The pool (and its start-up probe of the database) as every one-shot command has it;
            // the console's service group ends on SIGTERM/SIGINT, and the pool with it.
            try await withPostgresClient(settings, logger: logger) { client in
                let server = ConsoleServer(client: client, schema: schema, settings: console, logger: logger)
                logger.notice(
                    "console serving",
                    metadata: [
                        "address": "http://\(console.address)/", "schema": "\(schema.rawValue)",
                        "token": "\(console.token == nil ? "none (loopback only)" : "required")", "read_only": "\(console.readOnly)",
                    ])
                try await ServiceGroup(
                    configuration: ServiceGroupConfiguration(
                        services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
                ).run()
            }
        } catch let error as PSQLError {
            throw CommandFailure.exit(error, settings: settings)
        } catch {
            CommandFailure.report(
                "the console stopped: \(CommandFailure.describe(error, settings: settings)) (is \(console.address) already in use? pass --listen)")
            throw ExitCode(1)
        }
    }

    /// Flag > `OUTBOX_CONSOLE_*` variable > default.
    func consoleSettings(environment: [String: String], leaseTTL: Duration) throws -> ConsoleSettings {
        var console = ConsoleSettings(leaseTTL: leaseTTL)
        if let text = listen ?? environment["OUTBOX_CONSOLE_ADDRESS"] {
            guard let address = HTTPAddress(parsing: text) else {
                throw ValidationError("--listen / OUTBOX_CONSOLE_ADDRESS: \(String(reflecting: text)) is not host:port (e.g. 127.0.0.1:9465 or [::1]:9465)")
            }
            console.address = address
        }
        console.token = (token ?? environment["OUTBOX_CONSOLE_TOKEN"]).flatMap { $0.isEmpty ? nil : $0 }
        if readOnly {
            console.readOnly = true
        } else if let text = environment["OUTBOX_CONSOLE_READ_ONLY"] {
            switch text.lowercased() {
            case "true", "1", "yes": console.readOnly = true
            case "false", "0", "no", "": console.readOnly = false
            default: throw ValidationError("OUTBOX_CONSOLE_READ_ONLY: \(String(reflecting: text)) is not true or false")
            }
        }
        if let text = refresh ?? environment["OUTBOX_CONSOLE_REFRESH"] {
            guard let interval = DurationParser.parse(text), interval >= .seconds(1), interval <= .seconds(300) else {
                throw ValidationError("--refresh / OUTBOX_CONSOLE_REFRESH: \(String(reflecting: text)) is not a duration from 1s to 5m")
            }
            console.refreshInterval = interval
        }
        return console
    }
}
