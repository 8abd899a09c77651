/// One batch read: its rows in id order, the oldest transaction running at its snapshot (for the
/// ``Frontier``), and the lanes whose first due retry lay below where the read was asked to start
/// (the read started there instead; see `RelayStore.readBatch`).
struct BatchRead: Sendable {
    var rows: [PendingMessage]
    var oldestRunningTransaction: Int64
    var dueRetries: [(lane: Int16, id: Int64)] = []
    /// The rows' payload and key bytes reached the read's byte limit: like a read that returned
    /// its row limit, it may have stopped short of rows of its lanes (see `LaneCursors.observe`).
    var reachedByteLimit = false

    /// Cut by either limit: what lies past its last row is not known to be empty.
    func stoppedShort(limit: Int) -> Bool { rows.count >= limit || reachedByteLimit }
}
