import Synchronization
import Testing

@testable import OutboxRelay

/// `withDeadline` against operations that behave and operations that never return: the caller is
/// released at the deadline whatever the operation does, and `onAbandon` runs exactly once, only
/// for an operation that lost.
struct DeadlineTests {
    /// An await that ignores cancellation and never completes — what PostgresNIO 1.33's query on
    /// a channel that just closed does. (Resumed at the end of the test, so nothing leaks.)
    final class NeverAnswers: Sendable {
        private let waiter = Mutex<CheckedContinuation<Int, Never>?>(nil)
        func wait() async -> Int { await withCheckedContinuation { c in waiter.withLock { $0 = c } } }
        func release() { waiter.withLock { $0?.resume(returning: -1); $0 = nil } }
    }

    final class Count: Sendable {
        private let value = Mutex(0)
        func increment() { value.withLock { $0 += 1 } }
        var current: Int { value.withLock { $0 } }
    }

    @Test func anOperationThatIgnoresCancellationIsAbandonedAtTheDeadline() async throws {
        let never = NeverAnswers()
        let abandoned = Count()
        let started = ContinuousClock.now
        await #expect(throws: DeadlineExceeded.self) {
            try await withDeadline(.milliseconds(200), "a dead connection", onAbandon: { abandoned.increment() }) {
                await never.wait()
            }
        }
        let waited = ContinuousClock.now - started
        // The old task-group version waited here forever; a generous bound, not a timing test.
        #expect(waited < .seconds(5), "released after \(waited)")
        #expect(abandoned.current == 1)
        never.release()
    }

    @Test func anOperationWhoseConnectionIsLostIsAbandonedBeforeTheDeadline() async throws {
        let never = NeverAnswers()
        let abandoned = Count()
        let started = ContinuousClock.now
        await #expect(throws: ConnectionClosedUnderStatement.self) {
            try await withDeadline(
                .seconds(3600), "a statement on a closed connection", onAbandon: { abandoned.increment() },
                isLost: { ContinuousClock.now - started > .milliseconds(100) }
            ) { await never.wait() }
        }
        #expect(ContinuousClock.now - started < .seconds(60))
        #expect(abandoned.current == 1)
        never.release()
    }

    @Test func aTimelyResultIsReturnedAndNothingIsAbandoned() async throws {
        let abandoned = Count()
        let value = try await withDeadline(.seconds(10), "a quick one", onAbandon: { abandoned.increment() }) { 42 }
        #expect(value == 42)
        try await Task.sleep(for: .milliseconds(50))
        #expect(abandoned.current == 0)
    }

    @Test func theOperationsOwnErrorIsPassedOn() async throws {
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await withDeadline(.seconds(10), "failing") { () async throws -> Int in throw Boom() }
        }
    }

    /// Both the deadline and the deadline-less wait (the LISTEN connection) let their caller go
    /// at once when it is cancelled, even from an operation that never answers.
    @Test(arguments: [true, false])
    func cancellingTheCallerReleasesItFromAnOperationThatNeverAnswers(withALimit: Bool) async throws {
        let never = NeverAnswers()
        let task = Task {
            withALimit
                ? try await withDeadline(.seconds(3600), "a dead connection") { await never.wait() }
                : try await abandoningOnCancellation { await never.wait() }
        }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        let result = await task.result
        #expect(throws: CancellationError.self) { try result.get() }
        never.release()
    }

    @Test func theFirstResultWinsAndLaterOnesAreDropped() async throws {
        let call = AbandonableCall<Int>()
        #expect(call.finish(.success(1)))
        #expect(!call.finish(.success(2)))
        #expect(try await call.value() == 1)
    }
}
