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

    public init(schema: SchemaName) {
        self.schema = schema
    }

    /// The newest schema version this build knows.
    public static var latestVersion: Int { Migration.all.last?.version ?? 0 }

    /// Applies what is missing and returns the versions applied now (empty when up to date).
    @discardableResult
    public func migrate(client: PostgresClient, logger: Logger) async throws -> [Int] {
        try await client.withConnection { connection in
            try await migrate(connection: connection, logger: logger)
        }
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

    public var description: String {
        switch self {
        case .databaseIsNewer(let schema, let found, let known):
            return "schema \(schema) is at version \(found), but this outbox-relay only knows up to \(known): upgrade outbox-relay before running it against this database"
        }
    }
}
