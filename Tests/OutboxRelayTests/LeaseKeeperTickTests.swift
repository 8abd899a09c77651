import Testing
@testable import OutboxRelay

@Suite struct LeaseKeeperTickTests {
    let renew = Duration.seconds(5)

    @Test func balancedRelaysTickAtTheRenewalInterval() {
        #expect(LeaseKeeper.nextTick(after: .balanced, shortSince: nil, renewInterval: renew) == renew)
    }

    @Test func aHolderWithMarkedLanesTicksFastUntilTheyAreReleased() {
        #expect(LeaseKeeper.nextTick(after: .releasePending, shortSince: nil, renewInterval: renew) == .milliseconds(100))
    }

    @Test func aRelayBelowItsShareTicksFastOnlyForTwoIntervals() {
        #expect(LeaseKeeper.nextTick(after: .belowShare, shortSince: .now, renewInterval: renew) == .milliseconds(100))
        #expect(LeaseKeeper.nextTick(after: .belowShare, shortSince: .now - .seconds(11), renewInterval: renew) == renew)
    }

    @Test func neverSlowerThanTheRenewalIntervalItself() {
        #expect(LeaseKeeper.nextTick(after: .releasePending, shortSince: nil, renewInterval: .milliseconds(60)) == .milliseconds(60))
    }
}
