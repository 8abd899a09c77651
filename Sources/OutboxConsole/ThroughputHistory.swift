import Foundation
import Synchronization

/// The fleet's throughput over the last minutes, from the database alone (so it works without
/// Prometheus): the console reads how many rows have left the outbox (`pg_stat_user_tables`'
/// `n_tup_del` of `messages`: published or dead-lettered) at every refresh, and keeps the rates
/// between readings. Kept in the console's memory: the history starts when the console does.
/// PostgreSQL's statistics lag a backend's deletes by up to a second, so rates are smoothed over
/// each interval rather than exact per second.
final class ThroughputHistory: Sendable {
    struct Sample: Sendable, Codable, Equatable {
        var at: Date
        /// Rows per second that left the outbox since the previous reading.
        var perSecond: Double
    }

    private struct State {
        var last: (at: Date, total: Int64)?
        var samples: [Sample] = []
    }

    private let state = Mutex(State())
    let window: TimeInterval

    init(window: TimeInterval = 15 * 60) { self.window = window }

    /// Adds a reading of the cumulative count; a count that went down (statistics reset) restarts.
    func record(total: Int64, at: Date) {
        state.withLock { state in
            if let last = state.last, at > last.at, total >= last.total {
                state.samples.append(Sample(at: at, perSecond: Double(total - last.total) / at.timeIntervalSince(last.at)))
                state.samples.removeAll { $0.at < at.addingTimeInterval(-window) }
            }
            state.last = (at, total)
        }
    }

    var samples: [Sample] { state.withLock { $0.samples } }
}
