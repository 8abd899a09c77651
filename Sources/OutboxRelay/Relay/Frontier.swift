/// The highest outbox id below which every id is final: committed and visible, or never to be.
///
/// Ids are drawn at insert and become visible at commit, so a read can see id 101 while id 100 is
/// still in an open transaction. A read that later starts after 101 would never see 100. This
/// tracks, from the relay's own statements, when that can no longer happen:
///
/// Each read that returned rows records a **tick**: the highest id it returned. Every transaction
/// that drew a lower id drew it earlier, and had its transaction id by then (migration 5 makes
/// every insert take it first). The relay's next write (an ack, a retry, a dead letter) takes a
/// transaction id too, after the read: a **bound** above every transaction id assigned before the
/// read. Once a later read's snapshot has every transaction below that bound ended
/// (`pg_snapshot_xmin` ≥ bound), every id up to the tick's is final, and the frontier moves there.
///
/// The bound cannot come from the read's own snapshot: it lists running transactions only below
/// one past the newest *completed* one, so a transaction newer than every completed one (it took
/// its id, drew outbox id 100, and is still open while an older one commits id 101) is in no list
/// (`ReadCursorTests.aMessageOfATransactionNewerThanEveryCompletedOneIsNotPassed`).
///
/// Ticks are satisfied in order, so they are kept in a queue and taken from the front. A
/// transaction that stays open after taking an id — in any database of the cluster: ids are
/// cluster-wide — stops the frontier until it ends: reads then start lower and walk more, but
/// nothing is missed. Requires ids drawn in time order (`CACHE 1`, migration 5).
struct Frontier: Sendable, Equatable {
    private(set) var id: Int64 = 0
    private var ticks: [Tick] = []

    private struct Tick: Sendable, Equatable {
        var id: Int64
        /// A transaction id assigned after the read completed; nil until the relay's next write.
        var bound: Int64?
    }

    /// Ticks kept while the frontier is held by an open transaction; past it the newest replaces
    /// the last (which only delays advancing, never advances too far).
    static let maximumTicks = 64

    /// Records a read: the oldest transaction running at its snapshot (`pg_snapshot_xmin`) and the
    /// highest id it returned.
    mutating func observe(oldestRunning: Int64, highestID: Int64?) {
        while let first = ticks.first, let bound = first.bound, bound <= oldestRunning {
            id = max(id, first.id)
            ticks.removeFirst()
        }
        guard let highestID, highestID > (ticks.last?.id ?? id) else { return }
        let tick = Tick(id: highestID, bound: nil)
        if ticks.count >= Self.maximumTicks {
            ticks[ticks.count - 1] = tick
        } else {
            ticks.append(tick)
        }
    }

    /// A transaction id taken by a statement issued after every read recorded so far had
    /// completed (the pipeline's writes follow its reads; the read-ahead is recorded only once
    /// the writes of the batch it overlapped are done).
    mutating func bound(byTransaction xid: Int64) {
        for index in ticks.indices where ticks[index].bound == nil { ticks[index].bound = xid }
    }
}
