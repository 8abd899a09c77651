import Synchronization

/// The lanes this relay holds, shared by the lease keeper (which claims, renews and releases) and
/// the batch pipeline (which reads and writes them).
///
/// Self-fencing lives here: every lease carries a local deadline on the monotonic clock, set from
/// the moment the renewing statement was *sent* plus the TTL minus a safety margin. Once that
/// deadline passes the pipeline neither reads nor writes the lane, even if the database could not
/// be asked — so a relay that is cut off stops before another can take over, not after.
final class LeaseTable: Sendable {
    struct Held: Sendable {
        var epoch: Int64
        var validUntil: ContinuousClock.Instant
    }

    private struct State {
        var held: [Int16: Held] = [:]
        /// Lanes the keeper wants to hand back; the pipeline stops starting batches for them.
        var releasing: Set<Int16> = []
        /// Lanes of the batch in flight; the keeper never releases these.
        var inFlight: Set<Int16> = []
        /// Lanes with stragglers of earlier batches in flight (count of groups per lane); never
        /// released either, so no other relay publishes a key while this one's straggler may land.
        var straggling: [Int16: Int] = [:]
    }

    private let state = Mutex(State())
    private let pipelineProgress = Mutex(ContinuousClock.now)

    /// Called by the pipeline on every turn of its loop (a batch settled, an idle wait, an outage
    /// probe): the lease keeper's evidence that holding lanes still gets their messages published.
    func recordPipelineProgress(at instant: ContinuousClock.Instant = .now) {
        pipelineProgress.withLock { $0 = instant }
    }

    /// How long the pipeline has gone without a turn of its loop.
    func timeSincePipelineProgress(now: ContinuousClock.Instant = .now) -> Duration {
        now - pipelineProgress.withLock { $0 }
    }

    /// Leases usable for a new batch (valid for at least `horizon` more), marked in flight.
    func beginBatch(now: ContinuousClock.Instant, horizon: Duration) -> [LaneLease] {
        state.withLock { state in
            let usable = state.held
                .filter { !state.releasing.contains($0.key) && $0.value.validUntil > now + horizon }
                .map { LaneLease(lane: $0.key, epoch: $0.value.epoch) }
                .sorted { $0.lane < $1.lane }
            state.inFlight = Set(usable.map(\.lane))
            return usable
        }
    }

    func endBatch() {
        state.withLock { $0.inFlight = [] }
    }

    /// Marks lanes with records still in flight after their batch (see `Stragglers`).
    func beginStragglers(lanes: Set<Int16>) {
        state.withLock { state in
            for lane in lanes { state.straggling[lane, default: 0] += 1 }
        }
    }

    /// Balances ``beginStragglers(lanes:)`` once those records are settled.
    func endStragglers(lanes: Set<Int16>) {
        state.withLock { state in
            for lane in lanes {
                let left = (state.straggling[lane] ?? 1) - 1
                state.straggling[lane] = left > 0 ? left : nil
            }
        }
    }

    /// The subset of `leases` still held with the same epoch and not past its local deadline:
    /// the only lanes a write may touch.
    func stillValid(_ leases: [LaneLease], now: ContinuousClock.Instant) -> [LaneLease] {
        state.withLock { state in
            leases.filter { lease in
                guard let held = state.held[lease.lane] else { return false }
                return held.epoch == lease.epoch && held.validUntil > now
            }
        }
    }

    var all: [LaneLease] {
        state.withLock { state in
            state.held.map { LaneLease(lane: $0.key, epoch: $0.value.epoch) }.sorted { $0.lane < $1.lane }
        }
    }

    var count: Int { state.withLock { $0.held.count } }

    func holds(lane: Int16) -> Bool { state.withLock { $0.held[lane] != nil } }

    func add(_ leases: [LaneLease], validUntil: ContinuousClock.Instant) {
        state.withLock { state in
            for lease in leases {
                state.held[lease.lane] = Held(epoch: lease.epoch, validUntil: validUntil)
                state.releasing.remove(lease.lane)
            }
        }
    }

    /// Applies a renewal: renewed lanes get the new deadline, the others are dropped at once.
    /// Returns the lanes lost.
    func applyRenewal(attempted: [LaneLease], renewed: Set<Int16>, validUntil: ContinuousClock.Instant) -> [Int16] {
        state.withLock { state in
            var lost: [Int16] = []
            for lease in attempted {
                guard state.held[lease.lane]?.epoch == lease.epoch else { continue }
                if renewed.contains(lease.lane) {
                    state.held[lease.lane]?.validUntil = validUntil
                } else {
                    state.held[lease.lane] = nil
                    state.releasing.remove(lease.lane)
                    lost.append(lease.lane)
                }
            }
            return lost
        }
    }

    /// Marks exactly `count` lanes for release (replacing earlier marks) and returns those that can
    /// go now (not in flight).
    ///
    /// The marks are recomputed on every call rather than accumulated: when the fleet shrinks again
    /// before a marked lane could be handed back (it was in flight), the lane must become usable
    /// again — a lane left marked would be renewed forever but never read, its rows stuck.
    func surplusToRelease(count: Int) -> [LaneLease] {
        state.withLock { state in
            // Highest lanes first: claims take the lowest free lanes, so this keeps owners in ranges.
            let candidates = state.held.keys.sorted(by: >).prefix(max(count, 0))
            state.releasing = Set(candidates)
            return candidates
                .filter { !state.inFlight.contains($0) && state.straggling[$0] == nil }
                .compactMap { lane in state.held[lane].map { LaneLease(lane: lane, epoch: $0.epoch) } }
        }
    }

    /// Forgets every release mark (the relay is at or below its fair share again).
    func cancelRelease() {
        state.withLock { $0.releasing = [] }
    }

    /// Lanes marked for release and not handed back yet (for tests and logs).
    var releasing: Set<Int16> { state.withLock { $0.releasing } }

    func remove(_ lanes: [Int16]) {
        state.withLock { state in
            for lane in lanes {
                state.held[lane] = nil
                state.releasing.remove(lane)
            }
        }
    }

    /// Forgets every lease (after they were released, or when the relay stops).
    func removeAll() -> [LaneLease] {
        state.withLock { state in
            let leases = state.held.map { LaneLease(lane: $0.key, epoch: $0.value.epoch) }
            state.held = [:]
            state.releasing = []
            return leases
        }
    }

    /// Drops leases whose local deadline passed (self-fencing without asking the database).
    func expire(now: ContinuousClock.Instant) -> [Int16] {
        state.withLock { state in
            let expired = state.held.filter { $0.value.validUntil <= now }.map(\.key)
            for lane in expired {
                state.held[lane] = nil
                state.releasing.remove(lane)
            }
            return expired
        }
    }
}
