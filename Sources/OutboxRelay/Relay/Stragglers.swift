import NIOCore
import Tracing

/// Records of earlier batches still in flight: a send returned without them because the rest of its
/// batch was delivered and they were not (one partition without a reachable leader, or a slow one;
/// see `StragglerPolicy`).
///
/// Per-key order holds because their keys are **parked**: no message of a parked key is read (and
/// so published) until every straggler of that key is settled, exactly as a retry holds its key.
/// Every other key goes on at full speed. Their lanes are never released meanwhile
/// (`LeaseTable.beginStragglers`), and their publishing stays fenced (`OutstandingDeliveries`
/// purges if a lane's lease runs out). The total is bounded by the batch size (the send's
/// straggler budget), so at most two batches' worth of rows per relay are in flight at once: the
/// duplicate bound after a crash.
struct Stragglers: Sendable {
    struct TracedBatch: Sendable {
        var batch: any Span
        var sentAt: DefaultTracerClock.Instant
    }

    struct Group: Sendable {
        /// The leases of the batch that sent them: the fence of their settle.
        var leases: [LaneLease]
        /// Their rows, in the order of `deliveries.indices`.
        var rows: [PendingMessage]
        var deliveries: OutstandingDeliveries
        var since: ContinuousClock.Instant
        /// Keys with an earlier row of their batch that failed ahead of these (retried or left): a
        /// delivered straggler of such a key is not deleted (see `SettlePlan.keysBlockingInFlight`).
        var blockedKeys: Set<ByteBuffer> = []
        /// The batch span they were sent under and when (nil: no tracer): their message spans are
        /// made when they are settled, linked to it like the rest of their batch.
        var traced: TracedBatch? = nil

        var lanes: Set<Int16> { Set(rows.map(\.lane)) }
    }

    private(set) var groups: [Group] = []

    var isEmpty: Bool { groups.isEmpty }

    /// Rows in flight in all groups.
    var count: Int { groups.reduce(0) { $0 + $1.rows.count } }

    /// Their ids: never read again while they are in flight (keyless rows are not parked by key).
    var ids: [Int64] { groups.flatMap { $0.rows.map(\.id) } }

    /// Keys nothing may be read of until their stragglers are settled.
    var parkedKeys: Set<ByteBuffer> { Set(groups.flatMap { $0.rows.compactMap(\.key) }) }

    var allComplete: Bool { groups.allSatisfy(\.deliveries.isComplete) }

    mutating func add(_ group: Group) {
        groups.append(group)
    }

    /// Removes and returns the first group whose every report is in (one at a time, so a settle
    /// that fails leaves the others in place).
    mutating func takeFirstComplete() -> Group? {
        guard let index = groups.firstIndex(where: \.deliveries.isComplete) else { return nil }
        return groups.remove(at: index)
    }

    mutating func takeAll() -> [Group] {
        defer { groups = [] }
        return groups
    }
}
