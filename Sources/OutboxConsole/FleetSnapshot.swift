import Foundation
import Logging
import Outbox
import OutboxRelay
import PostgresNIO

/// The fleet as the console shows it, read in one snapshot of the database so every number agrees
/// with the others: the relays, the 256 lanes and their leases, and the backlog per topic.
public struct FleetSnapshot: Sendable, Codable {
    public struct Relay: Sendable, Codable, Equatable {
        public var id: String
        public var host: String
        public var pid: Int32
        public var version: String
        public var startedAt: Date
        public var heartbeatAt: Date
        public var heartbeatAgeSeconds: Double
        /// Lanes whose lease this relay holds and has not let expire.
        public var lanesHeld: Int
        /// Its heartbeat is younger than the lease TTL.
        public var alive: Bool
        /// Ready to publish, or why not, in words: from the heartbeat and the leases.
        public var state: String
    }

    public struct Lane: Sendable, Codable, Equatable {
        public var lane: Int16
        public var owner: String?
        public var epoch: Int64
        /// Seconds until the lease expires; negative once expired, nil when the lane is free.
        public var leaseSecondsLeft: Double?
        /// `held`, `expired` (an owner whose lease ran out: another relay may claim it) or `free`.
        public var state: String
    }

    public struct Topic: Sendable, Codable, Equatable {
        public var topic: String
        public var pending: Int64
        /// Pending and due now (fresh, or a retry whose wait is over).
        public var ready: Int64
        /// Waiting for a retry.
        public var retrying: Int64
        public var oldestAgeSeconds: Double
    }

    public var schema: String
    public var readAt: Date
    public var relays: [Relay]
    public var lanes: [Lane]
    public var topics: [Topic]
    public var deadLetters: Int64
    /// Rows that have left the outbox since the database's statistics were reset (published or
    /// dead-lettered): the console's throughput is the difference of two readings.
    public var rowsLeftOutbox: Int64

    public var pending: Int64 { topics.reduce(0) { $0 + $1.pending } }

    /// How many rows have left `$1`.messages since the statistics were reset (published or
    /// dead-lettered): PostgreSQL's own delete counter, so no relay writes anything for it.
    static let rowsLeftOutboxSQL =
        "coalesce((SELECT n_tup_del FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'messages'), 0)"

    /// Reads a snapshot; `leaseTTL` decides which heartbeats count as alive.
    public static func read(client: PostgresClient, schema: SchemaName, leaseTTL: Duration, logger: Logger) async throws -> FleetSnapshot {
        let s = schema.rawValue
        return try await client.withTransaction(logger: logger) { connection in
            _ = try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            var binds = PostgresBindings()
            binds.append(leaseTTL.milliseconds)
            var relays: [Relay] = []
            let relayRows = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT r.id, r.host, r.pid, r.version, r.started_at, r.heartbeat_at,
                               extract(epoch FROM now() - r.heartbeat_at)::float8,
                               (SELECT count(*) FROM \(s).lanes l WHERE l.owner = r.id AND l.lease_expires_at > now()),
                               r.heartbeat_at > now() - $1 * interval '1 millisecond'
                        FROM \(s).relays r ORDER BY r.id
                        """, binds: binds), logger: logger)
            for try await (id, host, pid, version, startedAt, heartbeatAt, age, held, alive) in relayRows.decode(
                (String, String, Int32, String, Date, Date, Double, Int64, Bool).self)
            {
                let state =
                    !alive ? "gone: no heartbeat for \(Int(age)) s (its leases expire and other relays take its lanes)"
                    : held == 0 ? "alive, holding no lanes (the others hold them all, or it is starting)"
                    : "publishing \(held) lanes"
                relays.append(
                    Relay(
                        id: id, host: host, pid: pid, version: version, startedAt: startedAt, heartbeatAt: heartbeatAt,
                        heartbeatAgeSeconds: age, lanesHeld: Int(held), alive: alive, state: state))
            }
            var lanes: [Lane] = []
            let laneRows = try await connection.query(
                """
                SELECT lane, owner, epoch, extract(epoch FROM lease_expires_at - now())::float8
                FROM \(unescaped: s).lanes ORDER BY lane
                """, logger: logger)
            for try await (lane, owner, epoch, left) in laneRows.decode((Int16, String?, Int64, Double?).self) {
                let state = owner == nil ? "free" : (left ?? -1) > 0 ? "held" : "expired"
                lanes.append(Lane(lane: lane, owner: owner, epoch: epoch, leaseSecondsLeft: owner == nil ? nil : left, state: state))
            }
            var topics: [Topic] = []
            let topicRows = try await connection.query(
                """
                SELECT topic, count(*),
                       count(*) FILTER (WHERE attempts = 0 OR available_at <= now()),
                       count(*) FILTER (WHERE attempts > 0 AND available_at > now()),
                       extract(epoch FROM now() - min(created_at))::float8
                FROM \(unescaped: s).messages GROUP BY topic ORDER BY count(*) DESC, topic LIMIT 200
                """, logger: logger)
            for try await (topic, pending, ready, retrying, oldest) in topicRows.decode((String, Int64, Int64, Int64, Double).self) {
                topics.append(Topic(topic: topic, pending: pending, ready: ready, retrying: retrying, oldestAgeSeconds: oldest))
            }
            var totals = PostgresBindings()
            totals.append(s)
            let counts = try await connection.query(
                PostgresQuery(
                    unsafeSQL: "SELECT (SELECT count(*) FROM \(s).dead_letters WHERE status = 'dead'), \(rowsLeftOutboxSQL)", binds: totals),
                logger: logger)
            var dead: Int64 = 0, left: Int64 = 0
            for try await (d, l) in counts.decode((Int64, Int64).self) { (dead, left) = (d, l) }
            return FleetSnapshot(
                schema: s, readAt: Date(), relays: relays, lanes: lanes, topics: topics, deadLetters: dead, rowsLeftOutbox: left)
        }
    }
}
