import CoreMetrics
import Logging
import PostgresNIO
import Synchronization

/// The one way the relay talks to its database: every statement on a connection leased for it,
/// under a deadline it cannot outlive (see `withDeadline`), and a connection whose statement was
/// abandoned is closed, so the pool replaces it and no later statement lands on it.
///
/// Why every call, not just the suspicious ones: any statement can meet a connection that died a
/// moment earlier (a PostgreSQL restart, `pg_terminate_backend`, a failover), a half-open TCP link
/// that never answers, or a row lock someone else holds; one unbounded await is enough to wedge
/// the batch loop or the lease keeper. The server enforces its own bounds too
/// (``DatabaseSessionBounds``), shorter than `deadline`, so on a live link the server cancels a
/// slow statement first and the relay gets a clean error; the client-side deadline is for the
/// links that cannot carry that error back.
///
/// PostgresNIO 1.33 gives no access to its pooled connections' sockets, so TCP keepalive and
/// `TCP_USER_TIMEOUT` are set on the server's end (startup parameters) rather than here.
struct BoundedDatabase: Sendable {
    let client: PostgresClient
    /// The longest one statement (including waiting for a connection) may take.
    let deadline: Duration
    /// Counted once per abandoned statement; nil when nobody asks (tests, probes).
    let abandoned: Counter?

    init(client: PostgresClient, deadline: Duration, abandoned: Counter? = nil) {
        self.client = client
        self.deadline = deadline
        self.abandoned = abandoned
    }

    /// Runs `body` on a leased connection within `deadline` (or `limit`, when shorter). On expiry
    /// the caller gets ``DeadlineExceeded`` at once and the connection is closed under the
    /// abandoned statement; if the connection closes while the statement waits, the caller gets
    /// ``ConnectionClosedUnderStatement`` within a quarter of a second.
    func run<T: Sendable>(
        _ what: String, limit: Duration? = nil, logger: Logger,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let limit = limit.map { min($0, deadline) } ?? deadline
        let leased = LeasedConnection()
        let (client, abandoned) = (self.client, self.abandoned)
        return try await withDeadline(
            limit, what,
            onAbandon: {
                abandoned?.increment()
                let connection = leased.take()
                logger.warning(
                    "abandoned a database statement that did not answer in time; closing its connection",
                    metadata: [
                        "statement": "\(what)", "limit": "\(limit)",
                        "connection": "\(connection.map { "\($0.id)" } ?? "none leased yet")",
                    ])
                connection?.close().whenComplete { _ in }
            },
            // A statement whose connection closed under it is not waited for: on a closed channel
            // PostgresNIO may never answer (the known hang), and a working one fails at once anyway.
            isLost: { leased.isClosed }
        ) {
            try await client.withConnection { connection in
                leased.set(connection)
                defer { leased.clear() }
                return try await body(connection)
            }
        }
    }

    /// Runs one statement and decodes every row with `decode`.
    func rows<Row: Sendable>(
        _ what: String, _ query: PostgresQuery, limit: Duration? = nil, logger: Logger,
        decode: @escaping @Sendable (PostgresRowSequence) async throws -> Row
    ) async throws -> Row {
        try await run(what, limit: limit, logger: logger) { connection in
            try await decode(try await connection.query(query, logger: logger))
        }
    }

    /// The connection the statement is on, for closing it when the statement is abandoned.
    private final class LeasedConnection: Sendable {
        private let connection = Mutex<PostgresConnection?>(nil)
        func set(_ value: PostgresConnection) { connection.withLock { $0 = value } }
        func clear() { connection.withLock { $0 = nil } }
        func take() -> PostgresConnection? { connection.withLock { value in defer { value = nil }; return value } }
        var isClosed: Bool { connection.withLock { $0?.isClosed ?? false } }
    }
}
