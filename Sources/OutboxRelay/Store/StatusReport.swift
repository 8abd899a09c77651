import Foundation
import Logging
import Outbox
import PostgresNIO

/// What `outbox-relay status` shows: the fleet, the backlog and the dead letters, read in one
/// snapshot so the numbers agree with each other.
public struct StatusReport: Sendable, Codable {
    public struct Relay: Sendable, Codable {
        public var id: String
        public var host: String
        public var pid: Int32
        public var version: String
        public var lanes: Int
        public var heartbeatAgeSeconds: Double
        public var alive: Bool
        public var startedAt: Date
        public var steppedBack: Bool
        /// What the relay's `/readyz` said at its last heartbeat (nil: it never said).
        public var ready: Bool?
        public var readiness: String?
        /// Ready or why not, in words (``RelayRecord/state``).
        public var state: String

        init(_ record: RelayRecord) {
            id = record.id
            host = record.host
            pid = record.pid
            version = record.version
            lanes = record.lanesHeld
            heartbeatAgeSeconds = record.heartbeatAgeSeconds
            alive = record.alive
            startedAt = record.startedAt
            steppedBack = record.steppedBack
            ready = record.ready
            readiness = record.readiness
            state = record.state
        }
    }

    public var schema: String
    public var schemaVersion: Int
    public var relays: [Relay]
    public var lanesTotal: Int
    public var lanesHeld: Int
    public var pending: Int64
    public var pendingReady: Int64
    public var pendingRetrying: Int64
    public var oldestPendingAgeSeconds: Double?
    public var deadLetters: Int64

    /// Reads the report; `leaseTTL` decides which heartbeats count as alive.
    public static func read(
        client: PostgresClient, schema: SchemaName, leaseTTL: Duration, logger: Logger
    ) async throws -> StatusReport {
        let s = schema.rawValue
        let version = try await Migrator(schema: schema).currentVersion(client: client, logger: logger)
        guard version > 0 else { throw StatusError.notMigrated(schema: s) }
        return try await client.withTransaction(logger: logger) { connection in
            _ = try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            let relays = try await RelayRecord.readAll(on: connection, schema: s, leaseTTL: leaseTTL, logger: logger).map(Relay.init)
            let counts = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT (SELECT count(*) FROM \(s).lanes),
                               (SELECT count(*) FROM \(s).lanes WHERE owner IS NOT NULL AND lease_expires_at > now()),
                               count(*),
                               count(*) FILTER (WHERE available_at <= now()),
                               count(*) FILTER (WHERE attempts > 0 AND available_at > now()),
                               extract(epoch FROM now() - min(created_at))::float8,
                               (SELECT count(*) FROM \(s).dead_letters WHERE status = 'dead')
                        FROM \(s).messages
                        """), logger: logger)
            for try await (lanesTotal, lanesHeld, pending, ready, retrying, oldest, dead) in counts.decode(
                (Int64, Int64, Int64, Int64, Int64, Double?, Int64).self)
            {
                return StatusReport(
                    schema: s, schemaVersion: version, relays: relays, lanesTotal: Int(lanesTotal),
                    lanesHeld: Int(lanesHeld), pending: pending, pendingReady: ready, pendingRetrying: retrying,
                    oldestPendingAgeSeconds: oldest, deadLetters: dead)
            }
            throw StatusError.notMigrated(schema: s)
        }
    }
}

public enum StatusError: Error, CustomStringConvertible {
    case notMigrated(schema: String)

    public var description: String {
        switch self {
        case .notMigrated(let schema):
            return "schema \(schema) has no outbox tables yet: run `outbox-relay migrate` first"
        }
    }
}
