/// When an idle batch loop reads again, and when it asks enqueuers to wake it.
///
/// A notification is not free for the application: a transaction that calls `pg_notify` takes a
/// database-wide lock at commit, so notifying commits serialize (migration 6). So the relay asks
/// for notifications only once it has been idle for ``quietBeforeWakeup``; until then it reads
/// again on its own, after waits that double from ``firstWait``. Under load a relay finds rows at
/// almost every read and never asks: the application commits without the lock. A quiet relay
/// asks, and the first enqueue after the quiet wakes it at once.
///
/// The waits keep doubling after it asked, up to the poll interval. That covers the gap the flag
/// leaves: `enqueue` reads the flag when it is called, so a transaction that enqueued before the
/// flag was set and commits later does not notify. Its row is found by the next read, which comes
/// at most about as long after its commit as the relay had been idle before it — a row never
/// waits much longer than its own transaction stayed open.
struct IdleSchedule: Sendable {
    /// Idle this long before asking for notifications: a few reads (after 1, 2 and 4 ms), far
    /// shorter than anyone notices, far longer than the gaps between rows under load.
    static let quietBeforeWakeup = Duration.milliseconds(8)
    static let firstWait = Duration.milliseconds(1)

    enum Step: Equatable {
        /// Wait this long (or until rung) and read again.
        case wait(Duration)
        /// Set the wake-up flag (``askedForWakeup()`` once it is set) and read again at once: a
        /// row committed while the flag was not yet visible notified nobody.
        case askForWakeup
    }

    private var idleSince: ContinuousClock.Instant?
    private var nextWait = firstWait
    /// The flag is set in the database (as far as this relay knows).
    private(set) var wantsWakeup = false

    /// After a read that found nothing.
    mutating func idle(now: ContinuousClock.Instant, pollInterval: Duration) -> Step {
        let since = idleSince ?? now
        idleSince = since
        if !wantsWakeup, now - since >= Self.quietBeforeWakeup { return .askForWakeup }
        let wait = min(nextWait, pollInterval)
        nextWait = min(nextWait * 2, pollInterval)
        return .wait(wait)
    }

    mutating func askedForWakeup() { wantsWakeup = true }

    /// After a read that found work (or anything but idleness): the waits start over. Returns
    /// whether the flag is set and should be cleared (``wakeupCleared()`` once it is).
    mutating func foundWork() -> Bool {
        idleSince = nil
        nextWait = Self.firstWait
        return wantsWakeup
    }

    mutating func wakeupCleared() { wantsWakeup = false }
}
