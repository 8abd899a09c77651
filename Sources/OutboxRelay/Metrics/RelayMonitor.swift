import Logging
import Outbox
import PostgresNIO

/// Samples the relay's gauges every few seconds, beside the pipeline in the relay's task group.
///
/// One cheap query per sample (the backlog per topic plus the number of free lanes) feeds the
/// backlog gauges and doubles as the "database answered recently" signal for `/readyz`, so a relay
/// that is idle — and therefore not querying much else — still proves its database is there.
struct RelayMonitor: Sendable {
    let client: PostgresClient
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

    /// Samples until cancelled.
    func run() async {
        while !Task.isCancelled {
            await sample()
            try? await Task.sleep(for: interval)
        }
    }

    func sample() async {
        let held = table.count
        metrics.lanesOwned.record(held)
        metrics.kafkaQueueDepth.record(producers.current.outstandingCount)
        do {
            let (backlog, free) = try await query()
            health.databaseAnswered()
            health.lanes(held: held, free: free)
            metrics.databaseUp.record(1)
            metrics.backlog(backlog)
        } catch {
            health.databaseFailed(String(reflecting: error))
            health.lanes(held: held, free: nil)
            metrics.databaseUp.record(0)
            logger.debug("monitor query failed", metadata: ["error": "\(String(reflecting: error))"])
        }
        let brokerDown = health.snapshot.brokerOutageSince != nil
        metrics.brokerUp.record(brokerDown ? 0 : 1)
    }

    /// The backlog per topic and the free lanes, on one connection.
    ///
    /// `count(*)` walks the outbox, which is small when the relay keeps up; when it does not, the
    /// sample every few seconds is still far cheaper than the batches themselves.
    private func query() async throws -> ([TopicBacklog], Int) {
        let s = schema.rawValue
        return try await client.withConnection { connection in
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
            let lanes = try await connection.query(
                PostgresQuery(
                    unsafeSQL: "SELECT count(*) FROM \(s).lanes WHERE owner IS NULL OR lease_expires_at <= now()"),
                logger: logger)
            var free = 0
            for try await count in lanes.decode(Int64.self) { free = Int(count) }
            return (backlog, free)
        }
    }
}
