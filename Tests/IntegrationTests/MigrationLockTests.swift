import Foundation
import Logging
import Outbox
import PostgresNIO
import Synchronization
import Testing

@testable import OutboxRelay

/// A migration that alters a table the application's `enqueue` reads (`relays`, since migration
/// 6) needs that table's exclusive lock. An application transaction that enqueued and is still
/// open holds a lock the migration waits for, and while it waits every new `enqueue` queues behind
/// it: `migrate` without a lock timeout stops the application's writes for as long as that
/// transaction stays open. It must instead give up each wait quickly, try again, and in the end
/// say who holds the lock; the application's enqueues go on meanwhile.
@Suite(.serialized) struct MigrationLockTests {
    @Test func aMigrationWaitingForALockNeitherHangsNorStopsEnqueues() async throws {
        try await OutboxFixture.with { fixture in
            let s = fixture.schema.rawValue
            for statement in [
                // The schema as migration 6 left it, so migration 7 (ALTER TABLE relays) is pending.
                "ALTER TABLE \(s).relays DROP COLUMN stepped_back, DROP COLUMN ready, DROP COLUMN readiness",
                "DELETE FROM \(s).schema_migrations WHERE version = 7",
            ] {
                try await fixture.client.query(PostgresQuery(unsafeSQL: statement), logger: fixture.logger)
            }
            let holder = try await PostgresConnection.test(fixture: fixture)
            defer { Task { try? await holder.close() } }
            // An application transaction that enqueued and has not committed yet.
            for statement in [
                "BEGIN", "SELECT \(s).enqueue('\(fixture.topic)', 'k', convert_to('held', 'UTF8'))",
            ] {
                try await holder.query(PostgresQuery(unsafeSQL: statement), logger: fixture.logger)
            }

            let migrator = Migrator(schema: fixture.schema, lockTimeout: .milliseconds(300), lockAttempts: 4, pauseBetweenAttempts: .milliseconds(200))
            let started = ContinuousClock.now
            let result = Mutex<Result<[Int], any Error>?>(nil)
            let migration = Task {
                do {
                    let applied = try await migrator.migrate(client: fixture.client, logger: fixture.logger)
                    result.withLock { $0 = .success(applied) }
                } catch {
                    result.withLock { $0 = .failure(error) }
                }
            }
            try await Task.sleep(for: .milliseconds(100))  // the migration is waiting for its lock
            // While the migration waits and retries, the application's enqueues go through: none
            // waits a second (the limit of this session) behind it.
            let application = try await PostgresConnection.test(fixture: fixture)
            defer { Task { try? await application.close() } }
            try await application.query("SET lock_timeout = '1s'", logger: fixture.logger)
            for index in 0..<6 {
                do {
                    try await application.query(
                        PostgresQuery(unsafeSQL: "SELECT \(s).enqueue('\(fixture.topic)', 'other-\(index)', convert_to('go', 'UTF8'))"),
                        logger: fixture.logger)
                } catch {
                    Issue.record("enqueue \(index) waited a second behind the migration: \(String(reflecting: error))")
                }
                try await Task.sleep(for: .milliseconds(120))
            }

            while result.withLock({ $0 }) == nil && ContinuousClock.now - started < .seconds(30) {
                try await Task.sleep(for: .milliseconds(100))
            }
            switch result.withLock({ $0 }) {
            case nil:
                Issue.record("migrate still waiting after 30 s behind an open transaction")
                try await holder.query("ROLLBACK", logger: fixture.logger)
                await migration.value
                return
            case .success(let applied)?:
                Issue.record("migrate applied \(applied) while the lock was held")
            case .failure(let error)?:
                #expect(ContinuousClock.now - started < .seconds(10))
                let message = "\(error)"
                #expect(message.contains("lock") && message.contains("idle in transaction"), "\(message)")
                #expect(message.contains("pid"), "names the session holding the lock: \(message)")
            }
            #expect(try await fixture.scalar("SELECT max(version) FROM {schema}.schema_migrations", as: Int32.self) == 6, "nothing half-applied")

            // Once that transaction ends the migration goes through.
            try await holder.query("COMMIT", logger: fixture.logger)
            #expect(try await migrator.migrate(client: fixture.client, logger: fixture.logger) == [7])
        }
    }
}

extension PostgresConnection {
    /// A connection of its own (not from the fixture's pool), for a session that holds a transaction open.
    static func test(fixture: OutboxFixture) async throws -> PostgresConnection {
        let settings = try RelaySettings(values: ["OUTBOX_DATABASE_URL": TestServices.databaseURL])
        let pool = settings.database.clientConfiguration()
        let configuration = PostgresConnection.Configuration(
            host: pool.host ?? "127.0.0.1", port: pool.port ?? 5432, username: pool.username, password: pool.password,
            database: pool.database, tls: .disable)
        return try await PostgresConnection.connect(configuration: configuration, id: 1, logger: fixture.logger)
    }
}
