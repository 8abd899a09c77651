/// Runs one database step of the batch loop with a deadline.
///
/// A statement whose connection died under it (seen after a PostgreSQL restart) may never answer;
/// without a deadline the batch loop would wait forever while the lease keeper kept renewing its
/// lanes. On expiry the step is cancelled and `DeadlineExceeded` thrown, which the loop handles
/// like any database error (back off, read again). Should the step ignore cancellation, the lease
/// keeper's watchdog still hands the lanes to the rest of the fleet.
@discardableResult
func withDeadline<T: Sendable>(
    _ limit: Duration, _ what: String, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw DeadlineExceeded(what: what, limit: limit)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

struct DeadlineExceeded: Error, CustomStringConvertible {
    var what: String
    var limit: Duration
    var description: String { "\(what) did not answer within \(limit)" }
}
