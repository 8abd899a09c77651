import Testing
@_spi(Benchmark) @testable import OutboxRelay

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(baseDelay: .milliseconds(100), maximumDelay: .seconds(5), maximumAttempts: 4)

    @Test func boundDoublesPerAttemptUpToTheCap() {
        #expect(policy.delayBound(afterAttempt: 1) == .milliseconds(100))
        #expect(policy.delayBound(afterAttempt: 2) == .milliseconds(200))
        #expect(policy.delayBound(afterAttempt: 3) == .milliseconds(400))
        #expect(policy.delayBound(afterAttempt: 6) == .milliseconds(3200))
        #expect(policy.delayBound(afterAttempt: 7) == .seconds(5))
        #expect(policy.delayBound(afterAttempt: 1000) == .seconds(5))
    }

    @Test func jitteredDelaysStayWithinTheBoundAndSpread() {
        var random = SystemRandomNumberGenerator()
        for attempt in 1...12 {
            let bound = policy.delayBound(afterAttempt: attempt)
            var seen = Set<Int64>()
            for _ in 0..<200 {
                let delay = policy.delay(afterAttempt: attempt, using: &random)
                #expect(delay >= .zero && delay <= bound)
                seen.insert(delay.milliseconds)
            }
            // Full jitter: not a constant.
            #expect(seen.count > 20)
        }
    }

    @Test func exhaustionCountsEveryAttempt() {
        #expect(!policy.isExhausted(afterAttempts: 3))
        #expect(policy.isExhausted(afterAttempts: 4))
        #expect(policy.isExhausted(afterAttempts: 5))
    }
}

@Suite struct FairShareTests {
    @Test func sharesCoverEveryLane() {
        for relays in 1...300 {
            let target = FairShare.target(lanes: 256, liveRelays: relays)
            #expect(target * relays >= 256, "relays \(relays) leave lanes without taker")
            #expect((target - 1) * relays < 256, "relays \(relays) target too greedy")
        }
        #expect(FairShare.target(lanes: 256, liveRelays: 1) == 256)
        #expect(FairShare.target(lanes: 256, liveRelays: 3) == 86)
        #expect(FairShare.target(lanes: 256, liveRelays: 0) == 256)
    }
}
