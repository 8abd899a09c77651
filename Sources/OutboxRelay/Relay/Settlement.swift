/// What a delivered batch still owes the database: the fenced ack, dead-letter and retry
/// statements, each cleared as it lands.
///
/// Kept when one of them fails and retried before anything else is read: the rows were delivered,
/// so reading them again would publish them again — once per turn of the loop for as long as the
/// fault lasts (seen: a lock held on `lanes` for 5 s republished a 500-row batch three times).
/// Retrying the settlement keeps the duplicates of a database fault to the one batch in flight,
/// and only when the lanes change hands meanwhile (the next owner publishes them again).
struct Settlement: Sendable {
    var leases: [LaneLease]
    var delivered: [Int64]
    var deadLetters: [DeadLetterDecision]
    var retries: [RetryDecision]
    /// Lanes a fenced write found taken over behind the relay's back (dropped from the lease table).
    var lostLanes: Set<Int16> = []

    var isDone: Bool { delivered.isEmpty && deadLetters.isEmpty && retries.isEmpty }

    /// Nothing more to write (the lanes are gone: their rows are the next owner's).
    mutating func clear() {
        delivered = []
        deadLetters = []
        retries = []
    }
}

/// A settle statement failed; `remaining` is what is still owed.
struct SettlementFailed: Error, CustomStringConvertible {
    var remaining: Settlement
    var underlying: any Error
    var description: String { String(reflecting: underlying) }
}
