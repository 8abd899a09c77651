import Logging
import Outbox
import PostgresNIO

/// Applies the outbox schema's migrations.
///
/// All pending steps run in one transaction holding a transaction-scoped advisory lock keyed by the
/// schema name, so any number of relays (or deploy jobs) may run `migrate` at the same time: one
/// applies, the others wait and then find nothing to do. Re-running is a no-op.
public struct Migrator: Sendable {
    public let schema: SchemaName
    public var lockTimeout: Duration
    public var lockAttempts: Int
    public var pauseBetweenAttempts: Duration

    public init(
        schema: SchemaName, lockTimeout: Duration = .seconds(2), lockAttempts: Int = 10,
        pauseBetweenAttempts: Duration = .seconds(1)
    ) {
        self.schema = schema
        self.lockTimeout = lockTimeout
        self.lockAttempts = max(1, lockAttempts)
        self.pauseBetweenAttempts = pauseBetweenAttempts
    }

    /// The newest schema version this build knows.
    public static var latestVersion: Int { Migration.all.last?.version ?? 0 }

    /// Applies what is missing and returns the versions applied now (empty when up to date).
    ///
    /// Every lock a step waits for is given up after `lockTimeout`, and the whole transaction is
    /// tried again after a pause, up to `lockAttempts` times. A step that alters a table the
    /// application's `enqueue` reads needs its exclusive lock; an application transaction that
    /// enqueued and is still open holds a lock that conflicts, and while the step waits every new
    /// `enqueue` queues behind it. Without a limit one idle transaction would stop the
    /// application's writes for as long as it stays open; with it they wait at most `lockTimeout`
    /// at a time, and in the end the error names the sessions that hold the locks.
    @discardableResult
    public func migrate(client: PostgresClient, logger: Logger) async throws -> [Int] {
        var attempt = 1
        while true {
            do {
                return try await client.withConnection { connection in
                    try await migrate(connection: connection, logger: logger)
                }
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55P03" {
                let holders = (try? await lockHolders(client: client, logger: logger)) ?? []
                guard attempt < lockAttempts else {
                    throw MigrationError.lockNotAvailable(
                        schema: schema.rawValue, attempts: attempt, lockTimeout: lockTimeout, holders: holders)
                }
                logger.warning(
                    "a migration step waited too long for a lock; trying again",
                    metadata: [
                        "schema": "\(schema.rawValue)", "attempt": "\(attempt)", "of": "\(lockAttempts)",
                        "lock_timeout": "\(lockTimeout)", "held_by": "\(holders.map(\.description).joined(separator: "; "))",
                    ])
                try await Task.sleep(for: pauseBetweenAttempts)
                attempt += 1
            }
        }
    }

    /// Other sessions holding locks on the schema's tables, oldest transaction first (what to end
    /// so the migration can go through).
    func lockHolders(client: PostgresClient, logger: Logger) async throws -> [MigrationError.LockHolder] {
        let rows = try await client.query(
            """
            SELECT a.pid, coalesce(a.state, 'unknown'), coalesce(a.application_name, ''),
                   coalesce(extract(epoch FROM now() - a.xact_start)::bigint, -1),
                   string_agg(DISTINCT c.relname, ', ' ORDER BY c.relname)
            FROM pg_locks l
            JOIN pg_class c ON c.oid = l.relation
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE n.nspname = \(schema.rawValue) AND l.granted AND l.pid <> pg_backend_pid()
            GROUP BY a.pid, a.state, a.application_name, a.xact_start
            ORDER BY a.xact_start NULLS LAST
            LIMIT 5
            """, logger: logger)
        var holders: [MigrationError.LockHolder] = []
        for try await (pid, state, application, seconds, tables) in rows.decode((Int32, String, String, Int64, String).self) {
            holders.append(.init(pid: pid, state: state, application: application, transactionSeconds: seconds, tables: tables))
        }
        return holders
    }

    func migrate(connection: PostgresConnection, logger: Logger) async throws -> [Int] {
        let s = schema.rawValue
        func run(_ sql: String) async throws {
            for statement in SQLScript.statements(sql) {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        }
        try await run("BEGIN")
        do {
            try await run("SELECT pg_advisory_xact_lock(hashtext('outbox-relay migrate \(s)'))")
            // After the advisory lock: a concurrent `migrate` is waited for as long as it takes.
            try await run("SET LOCAL lock_timeout = '\(max(1, lockTimeout.milliseconds))ms'")
            try await run(
                """
                CREATE SCHEMA IF NOT EXISTS \(s);
                CREATE TABLE IF NOT EXISTS \(s).schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            var applied = Set<Int>()
            let rows = try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT version FROM \(s).schema_migrations"), logger: logger)
            for try await version in rows.decode(Int.self) { applied.insert(version) }
            if let newest = applied.max(), newest > Self.latestVersion {
                throw MigrationError.databaseIsNewer(schema: s, found: newest, known: Self.latestVersion)
            }
            var appliedNow: [Int] = []
            for migration in Migration.all where !applied.contains(migration.version) {
                logger.info(
                    "applying migration",
                    metadata: ["schema": "\(s)", "version": "\(migration.version)", "name": "\(migration.name)"])
                try await run(migration.render(schema: s))
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL: "INSERT INTO \(s).schema_migrations (version, name) VALUES ($1, $2)",
                        binds: try Self.binds(migration.version, migration.name)),
                    logger: logger)
                appliedNow.append(migration.version)
            }
            try await run("COMMIT")
            return appliedNow
        } catch {
            try? await run("ROLLBACK")
            throw error
        }
    }

    /// The schema version the database is at (0 when the outbox was never migrated).
    public func currentVersion(client: PostgresClient, logger: Logger) async throws -> Int {
        let exists = try await client.query(
            "SELECT to_regclass(\(schema.rawValue + ".schema_migrations")) IS NOT NULL", logger: logger
        ).decode(Bool.self).first { _ in true } ?? false
        guard exists else { return 0 }
        let rows = try await client.query(
            PostgresQuery(unsafeSQL: "SELECT coalesce(max(version), 0) FROM \(schema.rawValue).schema_migrations"),
            logger: logger)
        return try await rows.decode(Int.self).first { _ in true } ?? 0
    }

    private static func binds(_ version: Int, _ name: String) throws -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(version)
        binds.append(name)
        return binds
    }
}

/// Why the schema could not be brought up to date.
public enum MigrationError: Error, CustomStringConvertible {
    case databaseIsNewer(schema: String, found: Int, known: Int)
    /// Each of `attempts` tries waited `lockTimeout` for a lock and gave up; nothing was applied.
    case lockNotAvailable(schema: String, attempts: Int, lockTimeout: Duration, holders: [LockHolder])

    /// A session holding a lock on one of the schema's tables.
    public struct LockHolder: Sendable, CustomStringConvertible {
        public var pid: Int32
        /// `pg_stat_activity.state`: `unknown` when the migrating role may not see other roles'
        /// sessions (it needs pg_read_all_stats for that).
        public var state: String
        public var application: String
        /// How long its transaction has been open; -1 unknown.
        public var transactionSeconds: Int64
        public var tables: String

        public var description: String {
            let age = transactionSeconds >= 0 ? ", transaction open for \(transactionSeconds)s" : ""
            let application = self.application.isEmpty ? "" : ", application \"\(self.application)\""
            return "pid \(pid) (\(state)\(age)\(application); holds \(tables))"
        }
    }

    public var description: String {
        switch self {
        case .databaseIsNewer(let schema, let found, let known):
            return "schema \(schema) is at version \(found), but this outbox-relay only knows up to \(known): upgrade outbox-relay before running it against this database"
        case .lockNotAvailable(let schema, let attempts, let lockTimeout, let holders):
            let who = holders.isEmpty
                ? "no session holds a lock on its tables any more: run migrate again"
                : "sessions holding locks on its tables: \(holders.map(\.description).joined(separator: "; ")); an open transaction that used the outbox (e.g. one that enqueued and was never committed, idle in transaction) holds its lock until it ends: end it, or pg_terminate_backend(pid), then run migrate again"
            return "migrating schema \(schema) waited for a lock \(attempts) times (\(lockTimeout) each; the application's enqueues waited at most that long behind it) and gave up; nothing was changed. \(who)"
        }
    }
}
