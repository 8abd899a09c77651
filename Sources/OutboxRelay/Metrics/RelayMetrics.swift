import CoreMetrics
import Foundation
import Synchronization

/// The relay's metrics, created once and handed to the pipeline and the monitor (no globals).
///
/// The library only speaks swift-metrics: whichever backend the process bootstrapped receives them
/// (the `run` command bootstraps Prometheus; tests and embedders without a backend get no-ops).
/// Every metric except the per-topic backlog gauges is created here, eagerly, so that a scrape
/// shows all names with zero values from the start instead of names appearing only after the
/// first event (dashboards and alerts can then tell "zero" from "not exported").
public struct RelayMetrics: Sendable {
    /// Names, one place, so the README, the dashboards and the tests agree.
    public enum Name {
        public static let published = "outbox_relay_published_total"
        public static let retried = "outbox_relay_retried_total"
        public static let deadLettered = "outbox_relay_dead_lettered_total"
        public static let batchSize = "outbox_relay_batch_size"
        public static let commitToAck = "outbox_relay_commit_to_ack_seconds"
        public static let pendingMessages = "outbox_relay_pending_messages"
        public static let oldestPendingAge = "outbox_relay_oldest_pending_age_seconds"
        public static let lanesOwned = "outbox_relay_lanes_owned"
        public static let brokerUp = "outbox_relay_broker_up"
        public static let databaseUp = "outbox_relay_database_up"
        public static let kafkaQueueDepth = "outbox_relay_kafka_queue_depth"
        public static let leaseRenewals = "outbox_relay_lease_renewals_total"
        public static let lanesAcquired = "outbox_relay_lanes_acquired_total"
        public static let lanesLost = "outbox_relay_lanes_lost_total"
        public static let databaseAbandoned = "outbox_relay_database_statements_abandoned_total"

        /// The names every scrape carries (the per-topic backlog gauges appear with the first topic seen).
        public static let alwaysPresent = [
            published, retried, deadLettered, batchSize, commitToAck, lanesOwned, brokerUp, databaseUp, kafkaQueueDepth,
            leaseRenewals, lanesAcquired, lanesLost, databaseAbandoned,
        ]
    }

    /// Suggested histogram buckets for a Prometheus backend: commit→ack spans milliseconds (a
    /// healthy relay) to minutes (an outage or a backlog), far beyond the 10 s default top bucket.
    public static let commitToAckBuckets: [Duration] = [
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
        .seconds(60), .seconds(300), .seconds(900),
    ]
    /// Suggested buckets for the batch size (1 to the largest allowed batch, 10 000).
    public static let batchSizeBuckets: [Double] = [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000]

    let factory: any MetricsFactory
    let published: Counter
    let retried: Counter
    let deadLettered: [DeadLetterReason: Counter]
    let batchSize: Recorder
    let commitToAck: CoreMetrics.Timer
    let lanesOwned: Gauge
    let brokerUp: Gauge
    let databaseUp: Gauge
    let kafkaQueueDepth: Gauge
    /// Renewal statements that succeeded (one per tick holding lanes): a flat line while lanes are
    /// owned means the keeper is not reaching the database.
    let leaseRenewals: Counter
    /// Lanes claimed (free or expired ones), so hand-overs and churn show on a dashboard.
    let lanesAcquired: Counter
    /// Lanes dropped *involuntarily*: a renewal found them taken over or expired, or the local
    /// self-fencing deadline passed. Voluntary releases (surplus, shutdown, watchdog) do not count,
    /// so any increase means a relay could not keep what it held.
    let lanesLost: Counter
    /// Statements given up past their deadline (their connection closed): a dead link or a server
    /// that stopped answering. Any increase is worth a look; a steady climb means the database
    /// link is broken in a way its errors do not show.
    let databaseAbandoned: Counter
    /// Topics given a backlog gauge so far, so a topic that drained is set to 0 rather than left stale.
    private let knownTopics = KnownTopics()

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        published = Counter(label: Name.published, factory: factory)
        retried = Counter(label: Name.retried, factory: factory)
        deadLettered = Dictionary(
            uniqueKeysWithValues: DeadLetterReason.allCases.map {
                ($0, Counter(label: Name.deadLettered, dimensions: [("reason", $0.rawValue)], factory: factory))
            })
        batchSize = Recorder(label: Name.batchSize, factory: factory)
        commitToAck = CoreMetrics.Timer(label: Name.commitToAck, factory: factory)
        lanesOwned = Gauge(label: Name.lanesOwned, factory: factory)
        brokerUp = Gauge(label: Name.brokerUp, factory: factory)
        databaseUp = Gauge(label: Name.databaseUp, factory: factory)
        kafkaQueueDepth = Gauge(label: Name.kafkaQueueDepth, factory: factory)
        leaseRenewals = Counter(label: Name.leaseRenewals, factory: factory)
        lanesAcquired = Counter(label: Name.lanesAcquired, factory: factory)
        lanesLost = Counter(label: Name.lanesLost, factory: factory)
        databaseAbandoned = Counter(label: Name.databaseAbandoned, factory: factory)
        // Optimistic until the first failure: a relay that just started has not seen an outage.
        brokerUp.record(1)
    }

    // MARK: Pipeline events

    /// One settled batch: what was read, delivered, rescheduled and dead-lettered.
    func batchSettled(read: Int, delivered: [PendingMessage], retried retries: Int, deadLettered reasons: [DeadLetterReason]) {
        batchSize.record(read)
        published.increment(by: delivered.count)
        retried.increment(by: retries)
        for reason in reasons {
            deadLettered[reason]?.increment()
        }
        // created_at is the enqueueing transaction's time: this is the lag a consumer sees.
        let now = Date()
        for message in delivered {
            let seconds = max(now.timeIntervalSince(message.createdAt), 0)
            commitToAck.recordNanoseconds(Int64(seconds * 1_000_000_000))
        }
    }

    // MARK: Monitor samples

    func backlog(_ topics: [TopicBacklog]) {
        let seen = Set(topics.map(\.topic))
        for topic in topics {
            Gauge(label: Name.pendingMessages, dimensions: [("topic", topic.topic)], factory: factory).record(topic.pending)
            Gauge(label: Name.oldestPendingAge, dimensions: [("topic", topic.topic)], factory: factory)
                .record(topic.oldestAgeSeconds)
        }
        for drained in knownTopics.replace(with: seen) {
            Gauge(label: Name.pendingMessages, dimensions: [("topic", drained)], factory: factory).record(0)
            Gauge(label: Name.oldestPendingAge, dimensions: [("topic", drained)], factory: factory).record(0)
        }
    }

    private final class KnownTopics: Sendable {
        private let topics = Mutex<Set<String>>([])

        /// Stores `current` and returns the topics known before that are not in it any more.
        func replace(with current: Set<String>) -> Set<String> {
            topics.withLock { topics in
                defer { topics.formUnion(current) }
                return topics.subtracting(current)
            }
        }
    }
}

/// One topic's share of the outbox, as the monitor's query reports it.
struct TopicBacklog: Sendable, Equatable {
    var topic: String
    var pending: Int64
    var oldestAgeSeconds: Double
}
