import Logging
import PostgresNIO

/// A transaction that holds the database's xmin horizon for as long as a run lasts, the way a long
/// report, a session stuck `idle in transaction` or a replica with `hot_standby_feedback` does: no
/// row deleted meanwhile can be vacuumed, so the relays' reads meet every dead tuple of the run.
///
/// A `REPEATABLE READ` transaction that has run one query keeps its snapshot (and so the horizon)
/// until it ends. It takes no transaction id: it holds back vacuum, not other transactions.
enum HeldHorizon {
    /// How a report names the condition.
    static let condition = "xmin horizon held (REPEATABLE READ transaction open)"

    /// Runs `body` with the horizon held on a connection of `client` (nil: just runs `body`).
    static func around<T>(_ client: PostgresClient?, logger: Logger, _ body: () async throws -> T) async throws -> T {
        guard let client else { return try await body() }
        return try await client.withConnection { connection in
            try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ", logger: logger)
            try await connection.query("SELECT count(*) FROM pg_class", logger: logger)
            Progress.line("holding the xmin horizon (a REPEATABLE READ transaction stays open until the run ends)")
            do {
                let result = try await body()
                try await connection.query("ROLLBACK", logger: logger)
                return result
            } catch {
                try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }
}
