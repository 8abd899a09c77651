import Outbox

/// Everything the relay loop needs, already validated (see `RelaySettings` for parsing).
public struct RelayConfiguration: Sendable {
    public var schema: SchemaName
    /// Unique per running relay; appears as lane owner and in `status`.
    public var relayID: String
    /// The envelope `source` (and id prefix) this relay is configured with; nil: whatever the outbox
    /// recorded (see migration 4), `outbox` if nothing is. The relay refuses to start when it is set
    /// and differs from the recorded one, since ids must not depend on which relay publishes.
    public var source: String?
    /// Most messages read, produced and acked together.
    public var batchSize: Int
    /// Most payload and key bytes one batch read returns (it ends at the row that reaches them),
    /// so large payloads shorten the batch instead of growing the process: a batch is held as
    /// rows, envelopes and librdkafka's copies while the next one is read ahead, about five
    /// times this at the peak.
    public var batchMaxBytes: Int
    /// How long a lane lease lasts without renewal (database clock).
    public var leaseTTL: Duration
    /// How often leases are renewed and the fleet's fair share recomputed; well below `leaseTTL`.
    public var renewInterval: Duration
    /// How long an idle relay waits for a NOTIFY before looking for work anyway.
    public var pollInterval: Duration
    /// Largest encoded envelope the relay produces; larger messages are dead-lettered.
    public var maximumMessageBytes: Int
    public var retry: RetryPolicy
    /// Exit once the outbox is empty (demos, benchmarks); a service never sets it.
    public var stopWhenDrained: Bool
    /// How long the batch loop may go without completing a turn before the relay gives up its
    /// lanes and membership so the rest of the fleet publishes them (see `LeaseKeeper`). It must
    /// exceed the longest legitimate step of a batch (see ``stallLimit(messageTimeout:statementDeadline:)``);
    /// nil derives it from the producer's delivery timeout and ``statementDeadline`` when the relay starts.
    public var pipelineStallLimit: Duration?
    /// The longest one database statement may keep the relay waiting (leasing a connection
    /// included) before it is abandoned and its connection closed; the server's own
    /// `statement_timeout` should be shorter (see `DatabaseSessionBounds.clientDeadline`).
    public var statementDeadline: Duration
    /// How batch reads walk the held lanes (``ReadWalk``); `.auto` except to compare or diagnose.
    public var readWalk: ReadWalk

    public init(
        schema: SchemaName = .default,
        relayID: String,
        source: String? = nil,
        batchSize: Int = 1000,
        batchMaxBytes: Int = RelayConfiguration.defaultBatchMaxBytes,
        leaseTTL: Duration = .seconds(15),
        renewInterval: Duration = .seconds(5),
        pollInterval: Duration = .seconds(1),
        maximumMessageBytes: Int = 1_000_000,
        retry: RetryPolicy = RetryPolicy(),
        stopWhenDrained: Bool = false,
        pipelineStallLimit: Duration? = nil,
        statementDeadline: Duration = DatabaseSessionBounds().clientDeadline,
        readWalk: ReadWalk = .auto
    ) {
        self.statementDeadline = statementDeadline
        self.readWalk = readWalk
        self.schema = schema
        self.relayID = relayID
        self.source = source
        self.batchSize = batchSize
        self.batchMaxBytes = batchMaxBytes
        self.leaseTTL = leaseTTL
        self.renewInterval = renewInterval
        self.pollInterval = pollInterval
        self.maximumMessageBytes = maximumMessageBytes
        self.retry = retry
        self.stopWhenDrained = stopWhenDrained
        self.pipelineStallLimit = pipelineStallLimit
    }

    /// 16 MiB: 1,000 rows of 16 KiB; far above a batch of small messages (256 B × 1,000 = 250 KiB),
    /// while 1 MiB payloads make batches of 16 and keep the relay near 100 MiB.
    public static let defaultBatchMaxBytes = 16 << 20

    /// The source recorded for an outbox when the first relay to start has none configured.
    public static let defaultSource = "outbox"

    /// A relay stops using a lane this long before its lease could expire by the database clock,
    /// covering clock-rate differences and the time a write takes to reach the database.
    var selfFencingMargin: Duration { leaseTTL / 5 }

    /// The shortest stall limit that no legitimate batch can reach: the watchdog counts every
    /// completed step as progress, so the longest silence of a working loop is its longest single
    /// step — a delivery (librdkafka's message timeout, plus its own slack) or a statement — plus
    /// the outage back-off between steps.
    public static func stallLimit(messageTimeout: Duration, statementDeadline: Duration) -> Duration {
        max(messageTimeout + .seconds(5), statementDeadline) + .seconds(15)
    }

    /// The stall limit in force for a producer with this delivery timeout: the one set, or the
    /// derived one (so an embedder who raises the delivery timeout never gets a watchdog that
    /// fires during a legitimate delivery).
    func resolvedStallLimit(messageTimeout: Duration) -> Duration {
        pipelineStallLimit ?? Self.stallLimit(messageTimeout: messageTimeout, statementDeadline: statementDeadline)
    }
}
