import Logging
import Outbox
import PostgresNIO

/// Samples the relay's gauges every few seconds, beside the pipeline in the relay's task group.
///
/// One cheap query per sample (the number of free lanes) doubles as the "database answered
/// recently" signal for `/readyz`, so a relay that is idle — and therefore not querying much
/// else — still proves its database is there. The backlog per topic walks the whole outbox, so
/// only one relay of the fleet counts it: the holder of lane 0, or every relay while nobody holds
/// lane 0 (the others report 0, and a dashboard aggregates with `max`). Counted by every relay,
/// it cost 100 ms of database time per relay and sample during a 200,000-row backlog.
///
/// Its query is bounded like every other (`BoundedDatabase`), by the sampling interval: an answer
/// that late is no sample, and a monitor waiting forever on a dead link would leave the gauges and
/// `/readyz` saying "database up, 128 lanes held" for the whole outage.
struct RelayMonitor: Sendable {
    let database: BoundedDatabase
    let schema: SchemaName
    let table: LeaseTable
    let producers: ProducerSlot
    let health: RelayHealth
    let metrics: RelayMetrics
    let interval: Duration
    let logger: Logger

    /// Often enough for gauges and readiness to follow within a scrape or two, rarely enough that
    /// the backlog count costs nothing noticeable.
    static let defaultInterval: Duration = .seconds(5)

    /// How long a relay that stopped heartbeating stays in `relays` (and `status`) before the
    /// counting relay deletes its row: long enough for an operator to see who went away.
    var relayRowRetention: Duration = .seconds(3600)

    /// Samples until cancelled.
    func run() async {
        while !Task.isCancelled {
            await sample()
            try? await Task.sleep(for: interval)
        }
    }

    func sample() async {
        metrics.kafkaQueueDepth.record(producers.current.outstandingCount)
        var free: Int?
        do {
            let (backlog, freeLanes) = try await query(holdingLaneZero: table.holds(lane: 0))
            free = freeLanes
            health.databaseAnswered()
            metrics.databaseUp.record(1)
            // Not the counting relay (any more): its topics read 0, so `max` shows the counter's.
            metrics.backlog(backlog ?? [])
        } catch {
            health.databaseFailed(String(reflecting: error))
            metrics.databaseUp.record(0)
            logger.debug("monitor query failed", metadata: ["error": "\(String(reflecting: error))"])
        }
        // Counted after the query, which may have taken up to an interval: the keeper may have
        // self-fenced lanes meanwhile.
        let held = table.count
        metrics.lanesOwned.record(held)
        health.lanes(held: held, free: free)
        let brokerDown = health.snapshot.brokerOutageSince != nil
        metrics.brokerUp.record(brokerDown ? 0 : 1)
    }

    /// The free lanes and, when this relay is the one to count it, the backlog per topic (nil
    /// otherwise), on one connection. The holder of lane 0 counts; while lane 0 is free or its
    /// lease ran out (no relay holds anything, or its holder is frozen) every relay counts, so a
    /// backlog nobody publishes still shows — that is when it matters most.
    ///
    /// `count(*)` walks the outbox, which is small when the relay keeps up; when it does not, the
    /// sample every few seconds by one relay is still far cheaper than the batches themselves.
    private func query(holdingLaneZero: Bool) async throws -> ([TopicBacklog]?, Int) {
        let s = schema.rawValue
        let (logger, pruneAfter) = (self.logger, relayRowRetention)
        return try await database.run("sampling the monitor's gauges", limit: interval, logger: logger) { connection in
            let lanes = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT count(*) FILTER (WHERE owner IS NULL OR lease_expires_at <= now()),
                               coalesce(bool_or(lane = 0 AND (owner IS NULL OR lease_expires_at <= now())), true)
                        FROM \(s).lanes
                        """),
                logger: logger)
            var free = 0
            var laneZeroFree = true
            for try await (count, zeroFree) in lanes.decode((Int64, Bool).self) { (free, laneZeroFree) = (Int(count), zeroFree) }
            guard holdingLaneZero || laneZeroFree else { return (nil, free) }
            // The same relay forgets members that crashed long ago (their rows never go otherwise).
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: "DELETE FROM \(s).relays WHERE heartbeat_at < now() - \(pruneAfter.milliseconds) * interval '1 millisecond'"),
                logger: logger)
            let rows = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT topic, count(*), coalesce(extract(epoch FROM now() - min(created_at))::float8, 0)
                        FROM \(s).messages GROUP BY topic
                        """), logger: logger)
            var backlog: [TopicBacklog] = []
            for try await (topic, pending, age) in rows.decode((String, Int64, Double).self) {
                backlog.append(TopicBacklog(topic: topic, pending: pending, oldestAgeSeconds: max(age, 0)))
            }
            return (backlog, free)
        }
    }
}
