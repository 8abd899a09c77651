import Foundation
@_spi(Benchmark) import OutboxRelay
import OutboxEnvelope
import Synchronization

/// When each message's enqueueing transaction committed, as the writer saw COMMIT return.
final class CommitLog: Sendable {
    private struct State {
        var commits: [Int64: ContinuousClock.Instant] = [:]
        /// Wall clock (ms since 1970) of each commit, to compare with the records' CreateTime.
        var wallMilliseconds: [Int64: Double] = [:]
        var maxLag: Duration = .zero
    }
    private let state = Mutex(State())

    func record(id: Int64, at instant: ContinuousClock.Instant, lag: Duration) {
        let wall = Date().timeIntervalSince1970 * 1000
        state.withLock {
            $0.commits[id] = instant
            $0.wallMilliseconds[id] = wall
            $0.maxLag = max($0.maxLag, lag)
        }
    }

    var commits: [Int64: ContinuousClock.Instant] { state.withLock { $0.commits } }
    var wallMilliseconds: [Int64: Double] { state.withLock { $0.wallMilliseconds } }
    var count: Int { state.withLock { $0.commits.count } }
    var maxLag: Duration { state.withLock { $0.maxLag } }
}

/// What the follower saw: each message's first arrival (the ledger reads the topic again).
final class ArrivalLog: Sendable {
    private struct State {
        var firstArrival: [Int64: ContinuousClock.Instant] = [:]
        /// The first copy's CreateTime (the relay's produce call) and its arrival, wall clock ms.
        var producedAndArrivedWall: [Int64: (produced: Double, arrived: Double)] = [:]
        var undecodable = 0
    }
    private let state = Mutex(State())
    private let stopFlag = Mutex(false)

    /// Called on the consumer's thread for every record as it arrives.
    func arrived(_ record: ConsumedRecord) {
        let now = ContinuousClock.now
        let wall = Date().timeIntervalSince1970 * 1000
        let sequence = try? Envelope(serializedBytes: record.value).sequence
        state.withLock { state in
            if let sequence {
                if state.firstArrival[sequence] == nil {
                    state.firstArrival[sequence] = now
                    if let produced = record.timestamp { state.producedAndArrivedWall[sequence] = (Double(produced), wall) }
                }
            } else {
                state.undecodable += 1
            }
        }
    }

    var firstArrival: [Int64: ContinuousClock.Instant] { state.withLock { $0.firstArrival } }
    var producedAndArrivedWall: [Int64: (produced: Double, arrived: Double)] { state.withLock { $0.producedAndArrivedWall } }
    func hasArrived(_ id: Int64) -> Bool { state.withLock { $0.firstArrival[id] != nil } }
    var uniqueCount: Int { state.withLock { $0.firstArrival.count } }

    func stop() { stopFlag.withLock { $0 = true } }
    var shouldStop: Bool { stopFlag.withLock { $0 } }
}
