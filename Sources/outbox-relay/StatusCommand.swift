import ArgumentParser
import Foundation
import Logging
import OutboxRelay

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show relays, lanes, pending messages and dead letters.")

    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        let settings = try await global.settings()
        let logger = Logger(label: "outbox-relay.status")
        let report: StatusReport
        do {
            let schema = settings.relay.schema
            let ttl = settings.relay.leaseTTL
            report = try await withPostgresClient(settings, logger: logger) { client in
                try await StatusReport.read(client: client, schema: schema, leaseTTL: ttl, logger: logger)
            }
        } catch {
            throw CommandFailure.exit(error, settings: settings)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("outbox \(report.schema) (schema version \(report.schemaVersion))")
        let oldest = report.oldestPendingAgeSeconds.map { String(format: "%.1fs", $0) } ?? "-"
        print("pending: \(report.pending) (ready \(report.pendingReady), waiting for retry \(report.pendingRetrying)), oldest \(oldest)")
        print("dead letters: \(report.deadLetters)")
        print("lanes held: \(report.lanesHeld) of \(report.lanesTotal)")
        if report.relays.isEmpty {
            print("relays: none registered")
        } else {
            print("relays:")
            for relay in report.relays {
                print(String(format: "  %@  %@ pid %d  v%@  lanes %d  heartbeat %.1fs ago: %@",
                             relay.id, relay.host, relay.pid, relay.version, relay.lanes, relay.heartbeatAgeSeconds, relay.state))
            }
        }
    }
}
