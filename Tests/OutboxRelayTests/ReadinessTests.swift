import Testing
@testable import OutboxRelay

/// The `/readyz` decision as a pure function of the health snapshot.
@Suite struct ReadinessTests {
    let now = ContinuousClock.now
    let stale = Duration.seconds(20)

    func evaluate(_ adjust: (inout RelayHealth.Snapshot) -> Void) -> Readiness {
        var health = RelayHealth.Snapshot(lastDatabaseSuccess: now - .seconds(1), lanesHeld: 4, freeLanes: 0)
        adjust(&health)
        return Readiness.evaluate(health, now: now, databaseStaleAfter: stale)
    }

    @Test func readyWhenEverythingAnswersAndLanesAreHeld() {
        let readiness = evaluate { _ in }
        #expect(readiness == .ready("ok: holds 4 lanes"))
        #expect(readiness.isReady)
    }

    @Test func readyWhenStandingByBecauseOthersHoldEveryLane() {
        #expect(evaluate { $0.lanesHeld = 0; $0.freeLanes = 0 } == .ready("ok: standing by (every lane is held by another relay)"))
    }

    @Test func notReadyWithoutLanesWhileSomeAreFree() {
        #expect(evaluate { $0.lanesHeld = 0; $0.freeLanes = 3 } == .notReady("holds no lanes although 3 are free"))
    }

    @Test func notReadyWhileTheLeaseKeeperFails() {
        let readiness = evaluate {
            $0.keeperError = "lease renewal failed: lock timeout"
            $0.keeperFailingSince = now - .seconds(7)
        }
        #expect(readiness == .notReady("lease keeper failing for 7s: lease renewal failed: lock timeout"))
    }

    @Test func notReadyOnceTheBatchLoopStalledWhateverElseHolds() {
        #expect(evaluate { $0.stalledFor = .seconds(61) } == .notReady("the batch loop made no progress for 61s; the relay is exiting"))
    }

    @Test func notReadyBeforeTheDatabaseAnswered() {
        #expect(evaluate { $0.lastDatabaseSuccess = nil } == .notReady("database has not answered yet"))
    }

    @Test func notReadyWhenTheDatabaseFails() {
        let readiness = evaluate { $0.databaseError = "connection refused\nmore detail" }
        #expect(readiness == .notReady("database unreachable: connection refused"))
    }

    @Test func notReadyWhenTheDatabaseIsSilentTooLong() {
        #expect(evaluate { $0.lastDatabaseSuccess = now - .seconds(31) } == .notReady("database unreachable: no answer for 31s"))
        #expect(evaluate { $0.lastDatabaseSuccess = now - .seconds(19) }.isReady)
    }

    @Test func notReadyDuringABrokerOutage() {
        let readiness = evaluate {
            $0.brokerOutageSince = now - .seconds(12)
            $0.brokerError = "_MSG_TIMED_OUT: Local: Message timed out"
        }
        #expect(readiness == .notReady("broker unreachable since 12s (_MSG_TIMED_OUT: Local: Message timed out)"))
    }

    @Test func theDatabaseIsReportedBeforeTheBroker() {
        let readiness = evaluate {
            $0.databaseError = "timeout"
            $0.brokerOutageSince = now
        }
        #expect(readiness == .notReady("database unreachable: timeout"))
    }

    @Test func notReadyWhileShuttingDown() {
        #expect(evaluate { $0.shuttingDown = true } == .notReady("shutting down"))
    }

    @Test func longReasonsAreClipped() {
        let reason = evaluate { $0.databaseError = String(repeating: "x", count: 500) }.message
        #expect(reason.count < 250)
    }

    @Test func sharedHealthTracksTheOutage() {
        let health = RelayHealth()
        health.databaseAnswered()
        health.lanes(held: 2, free: 0)
        #expect(health.readiness().isReady)
        health.brokerUnreachable("down", at: now - .seconds(5))
        health.brokerUnreachable("still down")
        #expect(health.snapshot.brokerOutageSince == now - .seconds(5))
        #expect(!health.readiness().isReady)
        #expect(health.readiness().message.hasPrefix("broker unreachable since"))
        health.brokerReachable()
        #expect(health.readiness().isReady)
        health.databaseFailed("gone")
        #expect(health.readiness() == .notReady("database unreachable: gone"))
        health.databaseAnswered()
        #expect(health.readiness().isReady)
    }
}
