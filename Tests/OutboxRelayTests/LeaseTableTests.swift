import Testing

@testable import OutboxRelay

/// The lease arithmetic every relay of the fleet relies on: which lanes a batch may use, what a
/// renewal keeps, what may be handed back, and how the fair share divides the lanes.
@Suite struct LeaseTableTests {
    let now = ContinuousClock.now

    func leases(_ lanes: ClosedRange<Int16>, epoch: Int64 = 1) -> [LaneLease] {
        lanes.map { LaneLease(lane: $0, epoch: epoch) }
    }

    // MARK: beginBatch

    @Test func beginBatchExcludesLanesNearTheirDeadline() {
        let table = LeaseTable()
        table.add(leases(0...3), validUntil: now + .seconds(10))
        table.add(leases(4...5), validUntil: now + .milliseconds(500))
        table.add(leases(6...6), validUntil: now - .seconds(1))
        let usable = table.beginBatch(now: now, horizon: .seconds(1))
        #expect(usable.map(\.lane) == [0, 1, 2, 3], "within the horizon of their deadline: not usable")
        table.endBatch()
        // With a horizon shorter than what is left, lanes 4 and 5 are usable; 6 never is.
        #expect(table.beginBatch(now: now, horizon: .milliseconds(100)).map(\.lane) == [0, 1, 2, 3, 4, 5])
    }

    @Test func beginBatchExcludesLanesBeingReleased() {
        let table = LeaseTable()
        table.add(leases(0...9), validUntil: now + .seconds(10))
        let released = table.surplusToRelease(count: 3)
        #expect(Set(released.map(\.lane)) == [7, 8, 9], "highest lanes go first, none in flight")
        // Marked (and not yet removed): a new batch must not start on them.
        #expect(table.beginBatch(now: now, horizon: .seconds(1)).map(\.lane) == Array(0...6))
    }

    @Test func beginBatchIsSortedAndCarriesEpochs() {
        let table = LeaseTable()
        table.add([LaneLease(lane: 9, epoch: 4), LaneLease(lane: 2, epoch: 7)], validUntil: now + .seconds(10))
        #expect(table.beginBatch(now: now, horizon: .zero) == [LaneLease(lane: 2, epoch: 7), LaneLease(lane: 9, epoch: 4)])
    }

    // MARK: surplusToRelease

    /// A lane with stragglers in flight (records left behind a slow partition) is not handed back
    /// until every straggler group on it is settled: otherwise its new owner could publish a later
    /// message of a key whose earlier one is still on its way from this relay.
    @Test func surplusNeverReturnsLanesWithStragglersInFlight() {
        let table = LeaseTable()
        table.add(leases(0...9), validUntil: now + .seconds(10))
        table.beginStragglers(lanes: [8, 9])
        table.beginStragglers(lanes: [9])
        #expect(Set(table.surplusToRelease(count: 3).map(\.lane)) == [7])
        table.endStragglers(lanes: [8, 9])
        #expect(Set(table.surplusToRelease(count: 3).map(\.lane)) == [7, 8], "lane 9 has a second group in flight")
        table.endStragglers(lanes: [9])
        #expect(Set(table.surplusToRelease(count: 3).map(\.lane)) == [7, 8, 9])
    }

    @Test func surplusNeverReturnsLanesInFlight() {
        let table = LeaseTable()
        table.add(leases(0...9), validUntil: now + .seconds(10))
        let batch = table.beginBatch(now: now, horizon: .zero)  // all ten in flight
        #expect(batch.count == 10)
        #expect(table.surplusToRelease(count: 4).isEmpty, "every candidate is in flight")
        #expect(table.releasing == [6, 7, 8, 9], "but they are marked")
        // The next batch leaves them out; once the first batch ended, they can go.
        table.endBatch()
        let next = table.beginBatch(now: now, horizon: .zero)
        #expect(next.map(\.lane) == Array(0...5))
        let released = table.surplusToRelease(count: 4)
        #expect(Set(released.map(\.lane)) == [6, 7, 8, 9])
        #expect(Set(released.map(\.lane)).isDisjoint(with: next.map(\.lane)))
    }

    @Test("property: surplus never overlaps the batch in flight", arguments: 0..<200)
    func surplusNeverOverlapsInFlight(seed: Int) {
        var random = SplitMix(seed: UInt64(seed))
        let table = LeaseTable()
        let held = Int16(random.next(below: 256))
        if held > 0 { table.add(leases(0...(held - 1)), validUntil: now + .seconds(10)) }
        // Some lanes marked earlier, then a batch begins, then the keeper asks for a surplus.
        _ = table.surplusToRelease(count: random.next(below: Int(held) + 1))
        let inFlight = Set(table.beginBatch(now: now, horizon: .zero).map(\.lane))
        let count = random.next(below: Int(held) + 2)
        let released = table.surplusToRelease(count: count)
        #expect(Set(released.map(\.lane)).isDisjoint(with: inFlight))
        #expect(released.count <= count)
        #expect(table.releasing.count == min(count, Int(held)))
    }

    @Test func releaseMarksAreDroppedWhenTheFleetShrinksBack() {
        // A relay joined (target fell), lanes were marked while in flight, then a relay left before
        // they could be handed back: they must become usable again, not stay renewed but unread.
        let table = LeaseTable()
        table.add(leases(0...85), validUntil: now + .seconds(10))
        _ = table.beginBatch(now: now, horizon: .zero)
        #expect(table.surplusToRelease(count: 22).isEmpty)
        table.endBatch()
        #expect(table.beginBatch(now: now, horizon: .zero).count == 64)
        table.endBatch()
        #expect(table.surplusToRelease(count: 0).isEmpty)
        #expect(table.releasing.isEmpty)
        #expect(table.beginBatch(now: now, horizon: .zero).count == 86)
        table.endBatch()
        _ = table.surplusToRelease(count: 5)
        table.cancelRelease()
        #expect(table.beginBatch(now: now, horizon: .zero).count == 86)
    }

    // MARK: applyRenewal, stillValid, expire

    @Test func applyRenewalDropsLostLanesAndExtendsTheOthers() {
        let table = LeaseTable()
        table.add(leases(0...4), validUntil: now + .seconds(1))
        let attempted = table.all
        let lost = table.applyRenewal(attempted: attempted, renewed: [0, 2, 4], validUntil: now + .seconds(10))
        #expect(Set(lost) == [1, 3])
        #expect(table.all.map(\.lane) == [0, 2, 4])
        // The renewed ones got the new deadline: usable with a horizon beyond the old one.
        #expect(table.beginBatch(now: now, horizon: .seconds(5)).map(\.lane) == [0, 2, 4])
    }

    @Test func applyRenewalIgnoresLeasesReclaimedMeanwhile() {
        // Lane 1 was lost and claimed again (new epoch) while the renewal of the old epoch was out.
        let table = LeaseTable()
        table.add(leases(0...1, epoch: 1), validUntil: now + .seconds(1))
        let attempted = table.all
        table.add([LaneLease(lane: 1, epoch: 2)], validUntil: now + .seconds(10))
        let lost = table.applyRenewal(attempted: attempted, renewed: [0], validUntil: now + .seconds(10))
        #expect(lost.isEmpty, "the new lease of lane 1 is not the one that failed to renew")
        #expect(table.all == [LaneLease(lane: 0, epoch: 1), LaneLease(lane: 1, epoch: 2)])
    }

    @Test func stillValidChecksEpochAndLocalDeadline() {
        let table = LeaseTable()
        table.add([LaneLease(lane: 0, epoch: 1), LaneLease(lane: 1, epoch: 1)], validUntil: now + .seconds(4))
        table.add([LaneLease(lane: 2, epoch: 3)], validUntil: now + .seconds(1))
        let batch = [LaneLease(lane: 0, epoch: 1), LaneLease(lane: 1, epoch: 1), LaneLease(lane: 2, epoch: 3)]
        #expect(table.stillValid(batch, now: now) == batch)
        // Lane 1 was taken over and re-claimed under a new epoch: the old batch may not write it.
        table.add([LaneLease(lane: 1, epoch: 2)], validUntil: now + .seconds(4))
        #expect(table.stillValid(batch, now: now).map(\.lane) == [0, 2])
        // A pause (SIGSTOP) past lane 2's deadline: no write, even before the keeper noticed.
        #expect(table.stillValid(batch, now: now + .seconds(2)).map(\.lane) == [0])
        // Past every deadline: nothing at all.
        #expect(table.stillValid(batch, now: now + .seconds(5)).isEmpty)
    }

    @Test func expireDropsLeasesPastTheirDeadline() {
        let table = LeaseTable()
        table.add(leases(0...2), validUntil: now + .seconds(1))
        table.add(leases(3...4), validUntil: now + .seconds(5))
        _ = table.surplusToRelease(count: 5)
        #expect(table.expire(now: now).isEmpty)
        #expect(Set(table.expire(now: now + .seconds(1))) == [0, 1, 2], "the deadline itself counts as passed")
        #expect(table.all.map(\.lane) == [3, 4])
        #expect(table.releasing == [3, 4])
        #expect(Set(table.expire(now: now + .seconds(6))) == [3, 4])
        #expect(table.count == 0)
        #expect(table.releasing.isEmpty)
    }

    @Test func removeAllForgetsEverything() {
        let table = LeaseTable()
        table.add(leases(0...9), validUntil: now + .seconds(10))
        _ = table.surplusToRelease(count: 3)
        #expect(table.removeAll().count == 10)
        #expect(table.count == 0)
        #expect(table.beginBatch(now: now, horizon: .zero).isEmpty)
    }

    @Test func selfFencingMarginLeavesRoomBeforeTheDatabaseExpiry() {
        // The local deadline (renew start + TTL − margin) must come before the database's
        // (renew execution + TTL), and a batch needs a margin's worth of lease left to start.
        for ttl in [Duration.seconds(2), .seconds(4), .seconds(15), .seconds(600)] {
            let configuration = RelayConfiguration(relayID: "r", leaseTTL: ttl, renewInterval: ttl / 3)
            #expect(configuration.selfFencingMargin > .zero)
            #expect(configuration.selfFencingMargin < ttl - configuration.renewInterval, "renewal comes before self-fencing")
        }
    }
}

@Suite struct FairSharePropertyTests {
    @Test func examples() {
        #expect(FairShare.target(lanes: 256, liveRelays: 1) == 256)
        #expect(FairShare.target(lanes: 256, liveRelays: 2) == 128)
        #expect(FairShare.target(lanes: 256, liveRelays: 3) == 86)
        #expect(FairShare.target(lanes: 256, liveRelays: 4) == 64)
        #expect(FairShare.target(lanes: 256, liveRelays: 300) == 1)
        #expect(FairShare.target(lanes: 256, liveRelays: 0) == 256, "a relay always counts itself")
        #expect(FairShare.target(lanes: 256, liveRelays: -3) == 256)
    }

    @Test("property: shares cover every lane, fairly", arguments: 1...600)
    func sharesCoverEveryLane(relays: Int) {
        let lanes = 256
        let target = FairShare.target(lanes: lanes, liveRelays: relays)
        #expect(target * relays >= lanes, "every lane has a taker")
        #expect(target >= 1)
        // No more than one lane above the exact share, and never more than it takes to cover all.
        #expect(target * relays < lanes + relays)
        #expect(target <= lanes)
        // Nobody holds more than a single relay would.
        #expect(target <= FairShare.target(lanes: lanes, liveRelays: max(relays - 1, 1)))
    }

    @Test("property: greedy claims by the fleet leave no lane without an owner", arguments: 1...64)
    func greedyClaimsCoverAllLanes(relays: Int) {
        // Relays take turns claiming up to their share from the free lanes, as their ticks would.
        var free = 256
        var held = [Int](repeating: 0, count: relays)
        let target = FairShare.target(lanes: 256, liveRelays: relays)
        for _ in 0..<3 {
            for relay in 0..<relays where held[relay] < target {
                let take = min(target - held[relay], free)
                held[relay] += take
                free -= take
            }
        }
        #expect(free == 0)
        #expect(held.allSatisfy { $0 <= target })
        #expect(held.reduce(0, +) == 256)
    }
}

/// A tiny deterministic generator, so a failing property case can be replayed by its seed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(below bound: Int) -> Int {
        bound <= 0 ? 0 : Int(next() % UInt64(bound))
    }
}
