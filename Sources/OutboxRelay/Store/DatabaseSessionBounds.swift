import PostgresNIO

/// The limits the server enforces on every session of a relay, sent as startup parameters so they
/// hold from the first statement on every connection the pool opens (no `SET` to forget after a
/// reconnect).
///
/// - `statement_timeout`: a statement slower than this is cancelled by the server, which answers
///   with an error the relay handles like any other (back off, read again). Set below the client's
///   own deadline (``clientDeadline``), so on a live link the server's clean error comes first.
/// - `lock_timeout`: a row lock held by somebody else (an operator's `SELECT … FOR UPDATE` on
///   `lanes`, a long transaction on `messages`) fails the statement instead of wedging it; the
///   relay reports not-ready with the reason and retries.
/// - `idle_in_transaction_session_timeout`: the relay never idles in a transaction; a session that
///   does (a client that vanished mid-transaction) must not hold locks or the xmin horizon.
/// - `client_connection_check_interval` (PostgreSQL 14+): a statement waiting on a lock notices
///   that its relay went away (exited, was killed) and ends, instead of running — and writing —
///   once the lock is released. Seen without it: a relay that exited mid-ack had its orphaned
///   ack delete rows after the lock holder committed.
/// - `tcp_keepalives_*` and `tcp_user_timeout`: the server notices a relay whose link went dead
///   (half-open TCP) within about half a minute and ends its backend, releasing its locks.
///   PostgresNIO 1.33 gives no access to the client's socket, so the client side is covered by the
///   relay's own deadline instead (see `BoundedDatabase`).
public struct DatabaseSessionBounds: Sendable, Equatable {
    public var statementTimeout: Duration
    public var lockTimeout: Duration
    public var idleInTransactionTimeout: Duration = .seconds(60)
    public var keepaliveIdle: Duration = .seconds(10)
    public var keepaliveInterval: Duration = .seconds(5)
    public var keepaliveCount = 3
    public var tcpUserTimeout: Duration = .seconds(20)
    public var clientConnectionCheckInterval: Duration = .seconds(2)
    /// Named in `pg_stat_activity`, so an operator (or a test) can tell the relay's sessions apart.
    public var applicationName = "outbox-relay"

    public init(statementTimeout: Duration = .seconds(30), lockTimeout: Duration = .seconds(10)) {
        self.statementTimeout = statementTimeout
        self.lockTimeout = lockTimeout
    }

    /// How long the relay waits for a statement before abandoning it: the server's timeout plus
    /// time for its error to travel back (and to lease a connection).
    public var clientDeadline: Duration { statementTimeout + .seconds(5) }

    /// The startup parameters, in the units PostgreSQL reads without a suffix (milliseconds, seconds).
    public var startupParameters: [(String, String)] {
        [
            ("application_name", String(applicationName.prefix(63))),
            ("statement_timeout", "\(statementTimeout.milliseconds)"),
            ("lock_timeout", "\(lockTimeout.milliseconds)"),
            ("idle_in_transaction_session_timeout", "\(idleInTransactionTimeout.milliseconds)"),
            ("tcp_keepalives_idle", "\(max(keepaliveIdle.milliseconds / 1000, 1))"),
            ("tcp_keepalives_interval", "\(max(keepaliveInterval.milliseconds / 1000, 1))"),
            ("tcp_keepalives_count", "\(keepaliveCount)"),
            ("tcp_user_timeout", "\(tcpUserTimeout.milliseconds)"),
            ("client_connection_check_interval", "\(clientConnectionCheckInterval.milliseconds)"),
        ]
    }

    /// `configuration` with these bounds added to its startup parameters, and without the pool's
    /// own keep-alive ping.
    ///
    /// PostgresNIO 1.33 runs that ping (`SELECT 1` on a connection idle for 30 s) with no deadline,
    /// and the connection stays out of the pool while it runs: one ping swallowed by a silent link
    /// holds a pool slot for good, and a few such faults leave the relay no connection to lease.
    /// The relay's statements are bounded and close their connection when abandoned, the server's
    /// TCP keepalive ends backends whose client vanished, and the pool closes idle connections
    /// after a minute: together they cover what the ping was for.
    public func applied(to configuration: PostgresClient.Configuration) -> PostgresClient.Configuration {
        var configuration = configuration
        configuration.options.additionalStartupParameters += startupParameters
        configuration.options.keepAliveBehavior = nil
        return configuration
    }
}
