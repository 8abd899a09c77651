/// Where the next read of each held lane starts, so a read walks only past rows it returns.
///
/// Reading "the oldest rows of my lanes" from the start of the table walks every dead index entry
/// a held xmin horizon keeps (measured: 47 ms and 18,500 buffers per 1,000 rows with 300,000 dead
/// rows, against 3.8 ms on a clean table). The relay knows better: below a lane's **floor** every
/// row is settled (deleted, dead-lettered), or is one this relay tracks and will read again.
///
/// A lane's floor is the lower of:
/// - how far its reads have covered — up to the last row of a read cut off by its row or byte
///   limit, or everything for a read that was not — but never past the ``Frontier`` (ids below it are
///   final; above it a transaction may still commit a lower id);
/// - one below every row read and not finished: not deleted, dead-lettered or rescheduled, and
///   not in flight. A row read ahead and dropped, held back behind its key, left by an outage or
///   not sent because its lease ran out is simply never finished, so its lane is read from it
///   again. Rows in flight (the batch, stragglers) are left out by id, so they do not hold the
///   floor back while the broker is slow; when they come back unfinished they hold it again.
///
/// Rows passed by a read without being returned have a way back of their own:
/// - a key waiting for a retry: the read itself starts below the first due retry of its lanes
///   (`RelayStore.readBatch`), so when the wait is over the retried row and everything after it
///   is read again, once;
/// - a key parked behind stragglers: when the group settles its lanes are rewound to it
///   (``rewind(lane:before:)``).
///
/// A lane newly held, or held again under another epoch, starts at 0: its previous owner may have
/// left anything.
struct LaneCursors: Sendable {
    private struct Lane: Sendable {
        var epoch: Int64
        var floor: Int64 = 0
        /// Rows a per-lane read asks of this lane (0: its share of the batch).
        var quota: Int = 0
    }

    private var lanes: [Int16: Lane] = [:]
    /// Rows read and not finished, with their lanes.
    private var open: [Int64: Int16] = [:]
    private var inFlight: Set<Int64> = []
    private(set) var frontier = Frontier()

    /// Starts lanes newly held (or held under a new epoch) from 0 and forgets lanes no longer held.
    mutating func sync(with leases: [LaneLease]) {
        let held = Dictionary(leases.map { ($0.lane, $0.epoch) }, uniquingKeysWith: max)
        var changed: Set<Int16> = []
        for (lane, state) in lanes where held[lane] != state.epoch { changed.insert(lane) }
        for lane in changed { lanes[lane] = nil }
        for (lane, epoch) in held where lanes[lane] == nil {
            lanes[lane] = Lane(epoch: epoch)
            changed.insert(lane)
        }
        guard !changed.isEmpty else { return }
        for (id, lane) in open where changed.contains(lane) {
            open[id] = nil
            inFlight.remove(id)
        }
    }

    /// The id a read of these lanes starts after: the lowest of their floors.
    func start(for lanes: [Int16]) -> Int64 {
        floors(of: lanes).min() ?? 0
    }

    /// Each lane's floor, beside it.
    private func floors(of lanes: [Int16]) -> [Int64] {
        var lowestOpen: [Int16: Int64] = [:]
        for (id, lane) in open where !inFlight.contains(id) {
            lowestOpen[lane] = min(lowestOpen[lane] ?? id, id)
        }
        return lanes.map { lane in
            min(self.lanes[lane]?.floor ?? 0, lowestOpen[lane].map { $0 - 1 } ?? .max)
        }
    }

    /// The floor of one lane (tests, logs).
    func floor(of lane: Int16) -> Int64 { start(for: [lane]) }

    /// How the next read of `lanes` walks them (`walk`, or for `.auto` by
    /// ``ReadShape/cheaper(held:of:)``), with each lane's floor and quota for the per-lane walk.
    func shape(for lanes: [Int16], limit: Int, walk: ReadWalk = .auto, totalLanes: Int = 256) -> ReadShape {
        let kind: ReadShape.Kind =
            switch walk {
            case .auto: ReadShape.cheaper(held: lanes.count, of: totalLanes)
            case .idOrder: .idOrder
            case .perLane: .perLane
            }
        switch kind {
        case .idOrder:
            return .idOrder(start: start(for: lanes))
        case .perLane:
            let share = Self.share(of: limit, lanes: lanes.count)
            return .perLane(
                zip(lanes, floors(of: lanes)).map { lane, floor in
                    ReadShape.LaneRead(lane: lane, after: floor, quota: max(share, self.lanes[lane]?.quota ?? 0))
                })
        }
    }

    /// A lane's share of a batch of `limit` rows read from `lanes` lanes: at least one row.
    static func share(of limit: Int, lanes: Int) -> Int {
        max(1, (limit + max(lanes, 1) - 1) / max(lanes, 1))
    }

    /// Records a read made in `shape`.
    ///
    /// Per lane, a lane that returned fewer rows than its quota (in a batch the limit did not cut)
    /// is covered up to the frontier; one that filled its quota, or any lane of a batch the limit
    /// may have cut, up to its last row returned (a lane of a cut batch that returned nothing is
    /// not moved). A lane that filled its quota while the batch had room asks twice as many next
    /// time, as long as all quotas together stay within twice the limit (so a read never sorts
    /// more than that); one that returned less than half goes back towards its share.
    mutating func observe(_ read: BatchRead, lanes readLanes: [Int16], shape: ReadShape, limit: Int) {
        guard case .perLane(let reads) = shape else {
            observe(read, lanes: readLanes, limit: limit)
            return
        }
        frontier.observe(oldestRunning: read.oldestRunningTransaction, highestID: read.rows.last.map(\.id))
        var returned: [Int16: (count: Int, last: Int64)] = [:]
        for row in read.rows {
            open[row.id] = row.lane
            let seen = returned[row.lane]
            returned[row.lane] = ((seen?.count ?? 0) + 1, max(seen?.last ?? row.id, row.id))
        }
        for due in read.dueRetries { rewind(lane: due.lane, before: due.id) }
        let cut = read.stoppedShort(limit: limit)
        let share = Self.share(of: limit, lanes: reads.count)
        var quotas = reads.reduce(0) { $0 + $1.quota }
        for asked in reads {
            guard var state = lanes[asked.lane] else { continue }
            let got = returned[asked.lane]
            let covered: Int64? =
                if cut { got?.last } else if let got, got.count >= asked.quota { got.last } else { .max }
            if let covered { state.floor = max(state.floor, min(covered, frontier.id)) }
            let count = got?.count ?? 0
            if !cut, count >= asked.quota, quotas + asked.quota <= 2 * limit {
                state.quota = min(limit, asked.quota * 2)
                quotas += asked.quota
            } else if count * 2 < asked.quota {
                state.quota = max(share, asked.quota / 2)
            }
            lanes[asked.lane] = state
        }
    }

    /// Records a read of `lanes` that asked for `limit` rows: its rows are open until finished,
    /// and every lane it covered moves its floor up to what it covered (within the frontier).
    ///
    /// A lane with a due retry was read from just below it: its floor goes back there first, so a
    /// read cut off before the end of what the retry held back leaves the rest to the next read.
    mutating func observe(_ read: BatchRead, lanes readLanes: [Int16], limit: Int) {
        let highest = read.rows.last.map(\.id)
        frontier.observe(oldestRunning: read.oldestRunningTransaction, highestID: highest)
        for row in read.rows { open[row.id] = row.lane }
        for due in read.dueRetries { rewind(lane: due.lane, before: due.id) }
        let covered = read.stoppedShort(limit: limit) ? (highest ?? 0) : .max
        let floor = min(covered, frontier.id)
        for lane in readLanes {
            guard var state = lanes[lane] else { continue }
            state.floor = max(state.floor, floor)
            lanes[lane] = state
        }
    }

    /// Rows handed to the producer: they no longer hold their lanes' floors (reads leave them out by id).
    mutating func sending(_ ids: some Sequence<Int64>) {
        for id in ids where open[id] != nil { inFlight.insert(id) }
    }

    /// Rows deleted, dead-lettered or rescheduled by a statement whose fence `lanes` passed: done
    /// with. Rows of other lanes were not written; they stay until handed back or their lane goes.
    mutating func finished(_ ids: some Sequence<Int64>, lanes: Set<Int16>) {
        for id in ids where open[id].map(lanes.contains) ?? false {
            open[id] = nil
            inFlight.remove(id)
        }
    }

    /// The transaction id a write of the relay took (see ``Frontier/bound(byTransaction:)``).
    mutating func wrote(transaction xid: Int64) {
        frontier.bound(byTransaction: xid)
    }

    /// Rows back from the producer unfinished (left by an outage, held back behind their key):
    /// their lanes are read from them again.
    mutating func returned(_ ids: some Sequence<Int64>) {
        for id in ids { inFlight.remove(id) }
    }

    /// Reads `lane` again from just before `id` (rows passed while their key was parked, or
    /// held behind a retry now due).
    mutating func rewind(lane: Int16, before id: Int64) {
        guard var state = lanes[lane] else { return }
        state.floor = min(state.floor, id - 1)
        lanes[lane] = state
    }
}
