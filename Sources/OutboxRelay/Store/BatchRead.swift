/// One batch read: its rows in id order, the oldest transaction running at its snapshot (for the
/// ``Frontier``), and the lanes whose first due retry lay below where the read was asked to start
/// (the read started there instead; see `RelayStore.readBatch`).
struct BatchRead: Sendable {
    var rows: [PendingMessage]
    var oldestRunningTransaction: Int64
    var dueRetries: [(lane: Int16, id: Int64)] = []
}
