import Testing

@testable import OutboxRelay

/// The idle loop's waits: doubling from 1 ms, a wake-up asked for after 8 ms without work (not
/// before: under load the application commits without notifying), doubling on after it up to the
/// poll interval, and everything starting over when work is found.
@Suite struct IdleScheduleTests {
    private let start = ContinuousClock.now

    @Test func waitsDoubleAndTheWakeupIsAskedForOnceQuiet() {
        var schedule = IdleSchedule()
        let poll = Duration.seconds(1)
        #expect(schedule.idle(now: start, pollInterval: poll) == .wait(.milliseconds(1)))
        #expect(schedule.idle(now: start + .milliseconds(1), pollInterval: poll) == .wait(.milliseconds(2)))
        #expect(schedule.idle(now: start + .milliseconds(3), pollInterval: poll) == .wait(.milliseconds(4)))
        #expect(schedule.idle(now: start + .milliseconds(8), pollInterval: poll) == .askForWakeup)
        #expect(!schedule.wantsWakeup, "not until the flag is set")
        #expect(schedule.idle(now: start + .milliseconds(9), pollInterval: poll) == .askForWakeup, "asked again if setting it failed")
        schedule.askedForWakeup()
        // On from where it was, so a row committed late by an old transaction is found about as
        // long after its commit as the relay had been idle.
        #expect(schedule.idle(now: start + .milliseconds(9), pollInterval: poll) == .wait(.milliseconds(8)))
        #expect(schedule.idle(now: start + .milliseconds(17), pollInterval: poll) == .wait(.milliseconds(16)))
        var waits: [Duration] = []
        for _ in 0..<10 {
            guard case .wait(let wait) = schedule.idle(now: start + .seconds(1), pollInterval: poll) else { break }
            waits.append(wait)
        }
        #expect(waits == [.milliseconds(32), .milliseconds(64), .milliseconds(128), .milliseconds(256), .milliseconds(512)] + Array(repeating: poll, count: 5))
    }

    @Test func workStartsTheWaitsOverAndClearsTheFlag() {
        var schedule = IdleSchedule()
        _ = schedule.idle(now: start, pollInterval: .seconds(1))
        let nothing = schedule.foundWork()
        #expect(!nothing, "nothing to clear")
        #expect(schedule.idle(now: start + .milliseconds(20), pollInterval: .seconds(1)) == .wait(.milliseconds(1)), "idle anew")
        #expect(schedule.idle(now: start + .milliseconds(28), pollInterval: .seconds(1)) == .askForWakeup)
        schedule.askedForWakeup()
        let set = schedule.foundWork()
        #expect(set, "the flag is to be cleared")
        let stillSet = schedule.foundWork()
        #expect(stillSet, "until that is done")
        schedule.wakeupCleared()
        let cleared = schedule.foundWork()
        #expect(!cleared)
    }

    @Test func aShortPollIntervalCapsEveryWait() {
        var schedule = IdleSchedule()
        let poll = Duration.milliseconds(10)
        var waits: [Duration] = []
        for step in 0..<4 {
            guard case .wait(let wait) = schedule.idle(now: start + .microseconds(step * 100), pollInterval: poll) else { break }
            waits.append(wait)
        }
        #expect(waits == [.milliseconds(1), .milliseconds(2), .milliseconds(4), .milliseconds(8)])
        #expect(schedule.idle(now: start + .microseconds(500), pollInterval: poll) == .wait(.milliseconds(10)))
    }
}
