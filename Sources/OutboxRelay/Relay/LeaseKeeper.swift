import Foundation
import Logging
import Tracing

/// Keeps this relay's share of the lanes: heartbeats its membership, renews held leases in one
/// statement, claims free or expired lanes up to the fair share and hands back the surplus.
///
/// It runs beside the batch pipeline, never inside it, so a slow batch (a broker outage, a long
/// flush) cannot delay renewal; and the pipeline's view of which lanes it may touch comes only from
/// the `LeaseTable` this keeper maintains.
struct LeaseKeeper: Sendable {
    let store: RelayStore
    let table: LeaseTable
    let doorbell: Doorbell
    let configuration: RelayConfiguration
    let identity: RelayIdentity
    let logger: Logger
    /// Renewals, claims and involuntary losses are counted here; the gauge of lanes held is the monitor's.
    let metrics: RelayMetrics
    /// Told whether the keeper's statements answer (a relay whose keeper is stuck is not ready),
    /// and that the batch loop stalled.
    var health = RelayHealth()
    /// Called once when the watchdog gives up on the batch loop, after the lanes were released:
    /// the relay service ends the relay there (so its supervisor restarts it).
    var onStall: @Sendable (Duration) -> Void = { _ in }
    /// Spans of lane claims and releases (nil: none).
    var tracing: RelayTracing? = nil

    /// The longest one keeper statement may take: past the renewal interval an answer is too late
    /// to keep the schedule, and a lease must never outlive the keeper's view of it.
    var statementLimit: Duration { max(configuration.renewInterval, .seconds(1)) }

    /// Ticks every renewal interval until cancelled — faster while the fleet is rebalancing.
    func run() async {
        var stalled = false
        var steppedBack = false
        var shortSince: ContinuousClock.Instant?
        while !Task.isCancelled {
            stalled = await watchPipeline(wasStalled: stalled)
            steppedBack = await watchBroker(wasSteppedBack: steppedBack)
            if steppedBack && !stalled { await beatSteppedBack() }
            let balance = stalled || steppedBack ? .balanced : await tick()
            shortSince = balance == .belowShare ? (shortSince ?? .now) : nil
            try? await Task.sleep(for: Self.nextTick(after: balance, shortSince: shortSince, renewInterval: configuration.renewInterval))
        }
    }

    /// Where this relay stands against its fair share after a tick.
    enum Balance: Equatable {
        case balanced
        /// Fewer lanes than its share: others are about to hand some over (or they are held).
        case belowShare
        /// Surplus lanes are marked but some were in the batch in flight and could not go yet.
        case releasePending
    }

    /// Hand-over is the one moment lanes sit idle (marked by their holder, not yet claimed by the
    /// newcomer), so both sides tick every 100 ms then (three small statements; at 250 ms three
    /// relays started together left a third of a 200,000-message drain to one relay for 0.6 s):
    /// the holder until its marked lanes are out
    /// of flight and released, the newcomer for at most two renewal intervals (it may be short for
    /// good when the share does not divide evenly, and must not poll forever).
    static func nextTick(after balance: Balance, shortSince: ContinuousClock.Instant?, renewInterval: Duration) -> Duration {
        let fast = min(renewInterval, .milliseconds(100))
        switch balance {
        case .releasePending:
            return fast
        case .belowShare:
            guard let shortSince, ContinuousClock.now - shortSince < renewInterval * 2 else { return renewInterval }
            return fast
        case .balanced:
            return renewInterval
        }
    }

    /// The watchdog: a relay whose batch loop has stopped making progress (every step of it is
    /// bounded, so this means a bound failed — a wait nobody foresaw) must not keep renewing lanes
    /// it no longer publishes, or their messages wait forever. It releases every lane and leaves the
    /// membership, so the others' fair share covers all lanes again; its late writes, should the
    /// loop wake up, are rejected by the epoch fence and the empty lease table. Then it tells the
    /// service (`onStall`), which ends the relay with an error so its supervisor restarts it: a
    /// wedged process does not heal by waiting. Returns whether the pipeline is stalled.
    func watchPipeline(wasStalled: Bool) async -> Bool {
        let silence = table.timeSincePipelineProgress()
        // The relay service resolves the limit from its producer; a keeper driven on its own assumes
        // librdkafka's default delivery timeout.
        let limit = configuration.resolvedStallLimit(messageTimeout: .seconds(30))
        let stalled = silence > limit
        if stalled && !wasStalled {
            logger.critical(
                "the batch loop made no progress; giving up every lane so the rest of the fleet publishes them, then exiting",
                metadata: ["silent_for": "\(silence)", "limit": "\(limit)"])
            health.pipelineStalled(for: silence)
            await releaseAll()
            onStall(silence)
        } else if !stalled && wasStalled {
            logger.warning("the batch loop is turning again; rejoining the fleet")
        }
        return stalled
    }

    /// A relay that cannot reach the broker must not keep lanes the rest of the fleet could
    /// publish. While the broker has been unreachable for a lease TTL (the pipeline found deliveries
    /// failing, or has never reached it since start-up), or at all while this relay holds no lane,
    /// it steps back: hands every lane over, leaves the membership (so the others' fair share covers
    /// all lanes) and claims nothing. It stays visible meanwhile: it heartbeats marked as stepped
    /// back (with why it is not ready), which the fleet's member count skips, so `status` and the
    /// console show it and why. Once the pipeline's probe reaches the broker again it rejoins.
    /// A short outage (a broker restart) keeps the lanes: handing them over would only move the
    /// wait elsewhere. When the whole cluster is down every relay steps back, which costs nothing:
    /// nobody could publish. Returns whether the relay is stepped back.
    func watchBroker(wasSteppedBack: Bool) async -> Bool {
        let snapshot = health.snapshot
        let outage = snapshot.brokerOutageSince.map { ContinuousClock.now - $0 }
        let steppedBack = outage.map { $0 >= configuration.leaseTTL || table.count == 0 } ?? false
        if steppedBack && !wasSteppedBack {
            if table.count > 0 {
                logger.warning(
                    "broker unreachable for a lease TTL; handing every lane to the rest of the fleet until it answers",
                    metadata: ["unreachable_for": "\(outage ?? .zero)", "error": "\(snapshot.brokerError ?? "")"])
            }
            await releaseAll(leavingTheFleet: false)
            await beatSteppedBack()
        } else if !steppedBack && wasSteppedBack {
            logger.info("broker reachable; joining the fleet")
        }
        return steppedBack
    }

    /// The heartbeat of a relay that stepped back: it stays in `relays` (so it is seen, with its
    /// reason) but outside the count the others divide the lanes by.
    func beatSteppedBack() async {
        do {
            _ = try await store.heartbeat(
                identity, steppedBack: true, readiness: health.readiness(), liveWithin: configuration.leaseTTL,
                limit: statementLimit, logger: logger)
        } catch {
            logger.warning("heartbeat failed while stepped back", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    @discardableResult
    func tick() async -> Balance {
        var balance = Balance.balanced
        let started = ContinuousClock.now
        let validUntil = started + configuration.leaseTTL - configuration.selfFencingMargin
        let limit = statementLimit
        // Membership first, on its own: a problem with `relays` must not stop renewal (that would
        // self-fence every lane for a table the lanes do not need). Without a fresh count the
        // keeper neither claims nor releases this tick; it only renews.
        var live: Int?
        var failure: String?
        do {
            live = try await store.heartbeat(
                identity, readiness: health.readiness(), liveWithin: configuration.leaseTTL, limit: limit, logger: logger)
        } catch {
            failure = "heartbeat failed: \(String(reflecting: error))"
            logger.warning("heartbeat failed; renewing only", metadata: ["error": "\(String(reflecting: error))"])
        }
        do {
            let attempted = table.all
            if !attempted.isEmpty {
                let renewed = try await store.renew(attempted, ttl: configuration.leaseTTL, limit: limit, logger: logger)
                metrics.leaseRenewals.increment()
                let lost = table.applyRenewal(attempted: attempted, renewed: renewed, validUntil: validUntil)
                if !lost.isEmpty {
                    metrics.lanesLost.increment(by: lost.count)
                    logger.warning("lost lane leases", metadata: ["lanes": "\(lost.sorted())"])
                }
            }
            if let live {
                balance = try await rebalance(live: live, validUntil: validUntil, limit: limit)
            }
        } catch {
            failure = "lease renewal failed: \(String(reflecting: error))"
            logger.warning("lease renewal failed; will retry", metadata: ["error": "\(String(reflecting: error))"])
        }
        if let failure { health.keeperFailed(failure) } else { health.keeperSucceeded() }
        let expired = table.expire(now: .now)
        if !expired.isEmpty {
            metrics.lanesLost.increment(by: expired.count)
            logger.error(
                "self-fenced lanes whose lease could not be renewed in time",
                metadata: ["lanes": "\(expired.sorted())"])
        }
        return balance
    }

    /// Claims up to the fair share or hands back the surplus.
    private func rebalance(live: Int, validUntil: ContinuousClock.Instant, limit: Duration) async throws -> Balance {
        let target = FairShare.target(lanes: Migration.laneCount, liveRelays: live)
        let held = table.count
        if held < target {
            table.cancelRelease()
            let started = tracing.map { _ in DefaultTracerClock.now }
            let claimed = try await store.claim(count: target - held, ttl: configuration.leaseTTL, limit: limit, logger: logger)
            if !claimed.isEmpty {
                if let tracing, let started { tracing.recordLeaseChange("outbox.claim", startedAt: started, lanes: claimed.map(\.lane), relays: live) }
                table.add(claimed, validUntil: validUntil)
                metrics.lanesAcquired.increment(by: claimed.count)
                logger.info(
                    "claimed lanes",
                    metadata: ["count": "\(claimed.count)", "held": "\(table.count)", "target": "\(target)", "relays": "\(live)"])
                doorbell.ring()
            }
            return table.count < target ? .belowShare : .balanced
        }
        // Every tick, so marks from an earlier, larger fleet are dropped once they are no
        // longer surplus (count 0 clears them).
        let releasable = table.surplusToRelease(count: held - target)
        if !releasable.isEmpty {
            let started = tracing.map { _ in DefaultTracerClock.now }
            try await store.release(releasable, limit: limit, logger: logger)
            if let tracing, let started { tracing.recordLeaseChange("outbox.release", startedAt: started, lanes: releasable.map(\.lane), relays: live) }
            table.remove(releasable.map(\.lane))
            logger.info(
                "released surplus lanes",
                metadata: ["count": "\(releasable.count)", "held": "\(table.count)", "target": "\(target)", "relays": "\(live)"])
        }
        return table.count > target ? .releasePending : .balanced
    }

    /// Hands every lane back and, `leavingTheFleet`, leaves the membership (deletes this relay's
    /// row; a relay stepping back marks it instead, see ``beatSteppedBack()``), so others take over
    /// without a TTL wait.
    ///
    /// Releases by owner, not by the leases in the table: a claim that committed while the keeper
    /// was being cancelled (its answer never reached the table) would otherwise stay ours until the
    /// TTL. At shutdown and after a stall the pipeline has stopped: nothing of this relay writes any
    /// lane any more. A relay stepping back (its broker unreachable) releases while its batch may
    /// still be in flight: the emptied table makes the pipeline abandon that send (purged within
    /// 100 ms) and the epoch fence refuses its settle, so its rows stay in the outbox for the new
    /// holder. A record of that batch the broker still appends later (bytes already on the wire)
    /// is a duplicate that lands after the new holder's copy; both copies are in key order, so the
    /// first delivery of every message keeps its key's order, which consumers deduplicating on the
    /// envelope id see.
    func releaseAll(leavingTheFleet: Bool = true) async {
        let leases = table.removeAll()
        do {
            let released = try await store.releaseAllOwned(limit: statementLimit, logger: logger)
            if leavingTheFleet { try await store.deregister(limit: statementLimit, logger: logger) }
            logger.info("released lanes", metadata: ["count": "\(released)", "held": "\(leases.count)"])
        } catch {
            logger.warning(
                "could not release lanes; they expire after the lease TTL",
                metadata: ["error": "\(String(reflecting: error))"])
        }
    }
}

/// What a relay says about itself in the `relays` table.
public struct RelayIdentity: Sendable {
    public var host: String
    public var pid: Int32
    public var version: String
    /// When this incarnation started: the relay's clock, so a restart under the same id shows.
    public var startedAt: Date

    public init(host: String, pid: Int32, version: String, startedAt: Date = Date()) {
        self.host = host
        self.pid = pid
        self.version = version
        self.startedAt = startedAt
    }
}
