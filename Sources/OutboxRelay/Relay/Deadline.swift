import Synchronization

/// Runs `operation` with a deadline the caller cannot be held past: when the time is up the caller
/// gets `DeadlineExceeded` at once, whether or not the operation honours cancellation.
///
/// Why not a task group racing a timer: a group waits for every child before it returns, so an
/// operation that never returns keeps the group — and its caller — forever. That is exactly the
/// hang seen after PostgreSQL restarts: PostgresNIO 1.33 writes a query to its channel with
/// `promise: nil` and awaits a promise nobody completes when the write lands on a channel that
/// closed a moment earlier (its handlers are gone). Here the operation runs in an unstructured
/// task and the caller waits on an ``AbandonableCall``, which the operation, the timer or the
/// caller's own cancellation completes, whichever comes first. The operation that lost is cancelled
/// and *abandoned*: it may still finish in the background, and its result is dropped (every write
/// of the relay is fenced and idempotent, so a late one is harmless). `onAbandon` runs once when
/// that happens, so the caller can count it and close the connection it was on.
///
/// `isLost`, when given, is asked four times a second while the operation runs: once it says the
/// operation can no longer succeed (its connection closed under it), the caller gets
/// ``ConnectionClosedUnderStatement`` at once instead of waiting out the deadline.
@discardableResult
func withDeadline<T: Sendable>(
    _ limit: Duration, _ what: String, onAbandon: @escaping @Sendable () -> Void = {},
    isLost: (@Sendable () -> Bool)? = nil,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let call = AbandonableCall<T>()
    let timer = Task {
        let deadline = ContinuousClock.now + limit
        var reason: any Error = DeadlineExceeded(what: what, limit: limit)
        if let isLost {
            while ContinuousClock.now < deadline {
                try? await Task.sleep(for: min(.milliseconds(250), deadline - ContinuousClock.now))
                guard !Task.isCancelled else { return }
                if isLost() {
                    reason = ConnectionClosedUnderStatement(what: what)
                    break
                }
            }
        } else {
            try? await Task.sleep(for: limit)
        }
        guard !Task.isCancelled else { return }
        if call.finish(.failure(reason)) { onAbandon() }
    }
    defer { timer.cancel() }
    return try await firstResult(of: call, running: operation)
}

/// Runs `operation` until it returns or the caller is cancelled, whichever comes first: a wait
/// with no deadline of its own (a LISTEN connection) that must still never hold up a shutdown
/// when its peer stopped answering. The operation is cancelled and abandoned on cancellation.
func abandoningOnCancellation<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await firstResult(of: AbandonableCall(), running: operation)
}

/// Runs `operation` in a task of its own and waits for whoever finishes `call` first: the
/// operation, a timer, another part of the relay (the watchdog) or the caller's cancellation. The
/// operation is cancelled as soon as the caller goes on (a no-op when it was the one to finish);
/// if it ignores that, it is abandoned and its late result dropped.
func firstResult<T: Sendable>(
    of call: AbandonableCall<T>, running operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let work = Task {
        do { call.finish(.success(try await operation())) } catch { call.finish(.failure(error)) }
    }
    defer { work.cancel() }
    return try await withTaskCancellationHandler {
        try await call.value()
    } onCancel: {
        call.finish(.failure(CancellationError()))
    }
}

/// A result that whoever comes first delivers, exactly once, to one waiter — the building block of
/// every wait the relay must be able to give up (a statement, a wedged batch loop).
///
/// Completing it never waits and never runs the waiter's code inline, so it is safe from timers,
/// cancellation handlers and other relays' callbacks alike.
final class AbandonableCall<T: Sendable>: Sendable {
    private struct State {
        var waiter: CheckedContinuation<T, any Error>?
        var early: Result<T, any Error>?
        var finished = false
    }

    private let state = Mutex(State())

    init() {}

    /// Delivers `result` unless something else did first; returns whether this call won.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let (won, waiter): (Bool, CheckedContinuation<T, any Error>?) = state.withLock { state in
            guard !state.finished else { return (false, nil) }
            state.finished = true
            guard let waiter = state.waiter else {
                state.early = result
                return (true, nil)
            }
            state.waiter = nil
            return (true, waiter)
        }
        waiter?.resume(with: result)
        return won
    }

    /// Whether nobody finished it yet.
    var isPending: Bool { state.withLock { !$0.finished } }

    /// Waits for the first result; call once.
    func value() async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let early: Result<T, any Error>? = state.withLock { state in
                if let early = state.early {
                    state.early = nil
                    return early
                }
                state.waiter = continuation
                return nil
            }
            if let early { continuation.resume(with: early) }
        }
    }
}

/// A statement the relay gave up on because its connection closed while it waited: PostgresNIO
/// 1.33 may never answer such a statement (see `withDeadline`), so waiting for the deadline would
/// only cost time.
public struct ConnectionClosedUnderStatement: Error, CustomStringConvertible, Sendable {
    public var what: String
    public var description: String { "the connection closed under \(what); abandoned it" }
}

/// A wait the relay gave up on: the peer did not answer within `limit`.
public struct DeadlineExceeded: Error, CustomStringConvertible, Sendable {
    public var what: String
    public var limit: Duration
    public var description: String { "\(what) did not answer within \(limit); abandoned it" }
}
