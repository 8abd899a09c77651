import Synchronization

/// What the relay knows about its own health, shared between the parts that learn it (the batch
/// pipeline, the periodic monitor) and `/readyz`, which only reads it.
///
/// Readiness is computed from a snapshot by a pure function (``Readiness/evaluate(_:now:databaseStaleAfter:)``)
/// so the decision is testable without a database, a broker or a clock.
public final class RelayHealth: Sendable {
    /// Everything readiness depends on, copied out under the lock.
    public struct Snapshot: Sendable, Equatable {
        /// When the database last answered a query (nil: not yet).
        public var lastDatabaseSuccess: ContinuousClock.Instant?
        /// The latest database failure, if it is more recent than the latest success.
        public var databaseError: String?
        /// Since when publishing is paused because the broker is unreachable (nil: not paused).
        public var brokerOutageSince: ContinuousClock.Instant?
        public var brokerError: String?
        /// Lanes this relay holds (as of the monitor's last sample).
        public var lanesHeld: Int
        /// Lanes nobody holds (as of the monitor's last query; nil: not asked yet).
        public var freeLanes: Int?
        public var shuttingDown: Bool
        /// Why the lease keeper's latest tick failed, since when (nil: it succeeded).
        public var keeperError: String?
        public var keeperFailingSince: ContinuousClock.Instant?
        /// Set once the watchdog found the batch loop silent past its limit: the relay is going
        /// away and `/healthz` fails from here on.
        public var stalledFor: Duration?

        public init(
            lastDatabaseSuccess: ContinuousClock.Instant? = nil, databaseError: String? = nil,
            brokerOutageSince: ContinuousClock.Instant? = nil, brokerError: String? = nil,
            lanesHeld: Int = 0, freeLanes: Int? = nil, shuttingDown: Bool = false,
            keeperError: String? = nil, keeperFailingSince: ContinuousClock.Instant? = nil, stalledFor: Duration? = nil
        ) {
            self.keeperError = keeperError
            self.keeperFailingSince = keeperFailingSince
            self.stalledFor = stalledFor
            self.lastDatabaseSuccess = lastDatabaseSuccess
            self.databaseError = databaseError
            self.brokerOutageSince = brokerOutageSince
            self.brokerError = brokerError
            self.lanesHeld = lanesHeld
            self.freeLanes = freeLanes
            self.shuttingDown = shuttingDown
        }
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    func databaseAnswered(at instant: ContinuousClock.Instant = .now) {
        state.withLock {
            $0.lastDatabaseSuccess = instant
            $0.databaseError = nil
        }
    }

    func databaseFailed(_ error: String) {
        state.withLock { $0.databaseError = error }
    }

    /// Publishing paused for a broker outage; keeps the first instant while the outage lasts.
    func brokerUnreachable(_ error: String, at instant: ContinuousClock.Instant = .now) {
        state.withLock {
            if $0.brokerOutageSince == nil { $0.brokerOutageSince = instant }
            $0.brokerError = error
        }
    }

    func brokerReachable() {
        state.withLock {
            $0.brokerOutageSince = nil
            $0.brokerError = nil
        }
    }

    func lanes(held: Int, free: Int?) {
        state.withLock {
            $0.lanesHeld = held
            if let free { $0.freeLanes = free }
        }
    }

    func keeperFailed(_ reason: String, at instant: ContinuousClock.Instant = .now) {
        state.withLock {
            if $0.keeperFailingSince == nil { $0.keeperFailingSince = instant }
            $0.keeperError = reason
        }
    }

    func keeperSucceeded() {
        state.withLock {
            $0.keeperError = nil
            $0.keeperFailingSince = nil
        }
    }

    func pipelineStalled(for silence: Duration) {
        state.withLock { $0.stalledFor = silence }
    }

    func beginShutdown() {
        state.withLock { $0.shuttingDown = true }
    }

    /// Readiness now, by the rules of ``Readiness/evaluate(_:now:databaseStaleAfter:)``.
    public func readiness(databaseStaleAfter: Duration = Readiness.defaultDatabaseStaleAfter) -> Readiness {
        Readiness.evaluate(snapshot, now: .now, databaseStaleAfter: databaseStaleAfter)
    }
}

/// The `/readyz` answer: ready with a short note, or not ready with a one-line reason.
public enum Readiness: Sendable, Equatable {
    case ready(String)
    case notReady(String)

    /// The database must have answered within this long. The pipeline asks it at least every poll
    /// interval and the monitor every few seconds, so silence this long means it is gone or hung.
    public static let defaultDatabaseStaleAfter: Duration = .seconds(20)

    public var isReady: Bool {
        if case .ready = self { return true }
        return false
    }

    public var message: String {
        switch self {
        case .ready(let note), .notReady(let note): return note
        }
    }

    /// Ready when the batch loop is turning, the database answered recently, the lease keeper's
    /// statements answer, publishing is not paused for a broker outage, and the relay holds lanes —
    /// or holds none only because every lane is held by another relay (the fleet's fair share left
    /// nothing for it: it stands by to take over).
    ///
    /// Checked in that order, so the reason names the most basic dependency that is missing.
    public static func evaluate(_ health: RelayHealth.Snapshot, now: ContinuousClock.Instant, databaseStaleAfter: Duration) -> Readiness {
        if let silence = health.stalledFor {
            return .notReady("the batch loop made no progress for \(wholeSeconds(silence)); the relay is exiting")
        }
        if health.shuttingDown {
            return .notReady("shutting down")
        }
        if let error = health.databaseError {
            return .notReady("database unreachable: \(oneLine(error))")
        }
        guard let lastSuccess = health.lastDatabaseSuccess else {
            return .notReady("database has not answered yet")
        }
        if now - lastSuccess > databaseStaleAfter {
            return .notReady("database unreachable: no answer for \(wholeSeconds(now - lastSuccess))")
        }
        if let error = health.keeperError, let since = health.keeperFailingSince {
            return .notReady("lease keeper failing for \(wholeSeconds(now - since)): \(oneLine(error))")
        }
        if let since = health.brokerOutageSince {
            let detail = health.brokerError.map { " (\(oneLine($0)))" } ?? ""
            return .notReady("broker unreachable since \(wholeSeconds(now - since))\(detail)")
        }
        if health.lanesHeld > 0 {
            return .ready("ok: holds \(health.lanesHeld) lane\(health.lanesHeld == 1 ? "" : "s")")
        }
        if let free = health.freeLanes, free > 0 {
            return .notReady("holds no lanes although \(free) \(free == 1 ? "is" : "are") free")
        }
        return .ready("ok: standing by (every lane is held by another relay)")
    }

    static func wholeSeconds(_ duration: Duration) -> String {
        "\(max(duration.components.seconds, 0))s"
    }

    /// First line, at most 200 characters: a reason must fit a probe's log line.
    static func oneLine(_ text: String) -> String {
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        return line.count > 200 ? String(line.prefix(200)) + "…" : line
    }
}
