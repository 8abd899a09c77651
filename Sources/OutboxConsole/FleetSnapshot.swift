import Foundation
import Logging
import Outbox
import OutboxRelay
import PostgresNIO

/// The fleet as the console shows it, read in one snapshot of the database so every number agrees
/// with the others: the relays, the 256 lanes and their leases, and the backlog per topic.
public struct FleetSnapshot: Sendable, Codable {
    public typealias Relay = RelayRecord

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

    /// A lane's share of the backlog: where a stuck lane shows (its oldest message keeps ageing,
    /// its attempts climb) whoever holds it.
    public struct LaneBacklog: Sendable, Codable, Equatable {
        public var lane: Int16
        public var pending: Int64
        public var oldestAgeSeconds: Double
        /// The most attempts of any of its messages (a retrying message holds its key back).
        public var maxAttempts: Int32
    }

    /// How many lanes ``FleetSnapshot/oldestLanes`` keeps.
    public static let oldestLanesShown = 10

    public var schema: String
    public var readAt: Date
    public var relays: [Relay]
    public var lanes: [Lane]
    public var topics: [Topic]
    /// The lanes with the oldest pending messages, oldest first.
    public var oldestLanes: [LaneBacklog]
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
            let relays = try await RelayRecord.readAll(on: connection, schema: s, leaseTTL: leaseTTL, logger: logger)
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
            // One scan of the outbox, grouped by lane and topic, gives both the per-topic backlog
            // and the lanes whose messages wait longest.
            var topicsByName: [String: Topic] = [:]
            var backlogByLane: [Int16: LaneBacklog] = [:]
            let backlogRows = try await connection.query(
                """
                SELECT lane, topic, count(*),
                       count(*) FILTER (WHERE attempts = 0 OR available_at <= now()),
                       count(*) FILTER (WHERE attempts > 0 AND available_at > now()),
                       extract(epoch FROM now() - min(created_at))::float8, max(attempts)
                FROM \(unescaped: s).messages GROUP BY lane, topic
                """, logger: logger)
            for try await (lane, topic, pending, ready, retrying, oldest, attempts) in backlogRows.decode(
                (Int16, String, Int64, Int64, Int64, Double, Int32).self)
            {
                var t = topicsByName[topic] ?? Topic(topic: topic, pending: 0, ready: 0, retrying: 0, oldestAgeSeconds: 0)
                t.pending += pending
                t.ready += ready
                t.retrying += retrying
                t.oldestAgeSeconds = max(t.oldestAgeSeconds, oldest)
                topicsByName[topic] = t
                var l = backlogByLane[lane] ?? LaneBacklog(lane: lane, pending: 0, oldestAgeSeconds: 0, maxAttempts: 0)
                l.pending += pending
                l.oldestAgeSeconds = max(l.oldestAgeSeconds, oldest)
                l.maxAttempts = max(l.maxAttempts, attempts)
                backlogByLane[lane] = l
            }
            let topics = Array(
                topicsByName.values.sorted { ($0.pending, $1.topic) > ($1.pending, $0.topic) }.prefix(200))
            let oldestLanes = Array(
                backlogByLane.values.sorted { ($0.oldestAgeSeconds, $1.lane) > ($1.oldestAgeSeconds, $0.lane) }
                    .prefix(oldestLanesShown))
            var totals = PostgresBindings()
            totals.append(s)
            let counts = try await connection.query(
                PostgresQuery(
                    unsafeSQL: "SELECT (SELECT count(*) FROM \(s).dead_letters WHERE status = 'dead'), \(rowsLeftOutboxSQL)", binds: totals),
                logger: logger)
            var dead: Int64 = 0, left: Int64 = 0
            for try await (d, l) in counts.decode((Int64, Int64).self) { (dead, left) = (d, l) }
            return FleetSnapshot(
                schema: s, readAt: Date(), relays: relays, lanes: lanes, topics: topics, oldestLanes: oldestLanes, deadLetters: dead, rowsLeftOutbox: left)
        }
    }
}
