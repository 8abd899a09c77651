import Foundation
import Logging
import Outbox
import PostgresNIO
import OutboxTestSupport
import Testing
@testable import OutboxRelay

/// deploy/sql/roles.sql against the real PostgreSQL: a relay process connected as the relay role
/// drains messages that a connection with the app role enqueued (publishing and dead-lettering),
/// every other relay statement works as that role, the admin role migrates and replays dead
/// letters — and the app and relay roles are refused everything beyond their job.
@Suite(.serialized) struct LeastPrivilegeRolesTests {
    /// Roles are global to the cluster: unique names per run, dropped at the end.
    struct Roles {
        let relay, app, admin: String

        init() {
            let suffix = TestServices.uniqueName("r")
            relay = "relay_\(suffix)"
            app = "app_\(suffix)"
            admin = "admin_\(suffix)"
        }
    }

    @Test func eachRoleCanDoItsJobAndNothingElse() async throws {
        try await OutboxFixture.with { fixture in
            let roles = Roles()
            do {
                try await Self.check(fixture, roles)
            } catch {
                // PSQLError's description hides the server's message; the test needs it.
                Issue.record("\(String(reflecting: error))")
                try? await Self.drop(roles, fixture)
                throw error
            }
            try await Self.drop(roles, fixture)
        }
    }

    static func check(_ fixture: OutboxFixture, _ roles: Roles) async throws {
        // Applied twice: it is meant to be re-run after every migrate.
        for _ in 0..<2 {
            let script = try await applyRolesScript(schema: fixture.schema.rawValue, roles)
            #expect(script.code == 0, "roles.sql: \(script.stderr)")
            #expect(script.stdout.contains("roles ready"), "\(script.stdout)")
        }

        // The app role enqueues through the function, and can do nothing else.
        let badTopic = "not a topic!"
        try await withClient(as: roles.app) { app in
            let ids = try await app.withTransaction(logger: fixture.logger) { connection in
                try await OutboxWriter(schema: fixture.schema).enqueue(
                    (0..<6).map { OutboxMessage(topic: fixture.topic, key: "k-\($0 % 3)", payload: "m-\($0)") }
                        + [OutboxMessage(topic: badTopic, key: "poison", payload: "dies")],
                    on: connection, logger: fixture.logger)
            }
            #expect(ids.count == 7)
            for statement in [
                "SELECT payload FROM {schema}.messages", "SELECT count(*) FROM {schema}.messages",
                "DELETE FROM {schema}.messages", "UPDATE {schema}.messages SET attempts = 0",
                "INSERT INTO {schema}.messages (topic, payload) VALUES ('t', '')",
                "SELECT * FROM {schema}.dead_letters", "UPDATE {schema}.lanes SET owner = 'me'",
                "SELECT * FROM {schema}.relays", "SELECT {schema}.lane_of('k', 1)",
            ] {
                try await expectDenied(statement, on: app, fixture: fixture, role: "app")
            }
        }

        // The relay role, statement by statement (the process below never retries).
        try await withClient(as: roles.relay) { relay in
            for statement in [
                "SELECT * FROM {schema}.dead_letters", "UPDATE {schema}.dead_letters SET status = 'purged'",
                "UPDATE {schema}.messages SET payload = ''", "INSERT INTO {schema}.messages (topic, payload) VALUES ('t', '')",
                "SELECT {schema}.enqueue('t', 'k', ''::bytea)", "SELECT * FROM {schema}.dlq_audit",
                "CREATE TABLE {schema}.intruder (a int)", "DELETE FROM {schema}.lanes",
            ] {
                try await expectDenied(statement, on: relay, fixture: fixture, role: "relay")
            }
            let store = RelayStore(client: relay, schema: fixture.schema, relayID: "in-process-\(roles.relay)")
            let logger = fixture.logger
            #expect(try await store.heartbeat(RelayIdentity(host: "test", pid: 1, version: "test"), liveWithin: .seconds(10), logger: logger) >= 1)
            let leases = try await store.claim(count: 256, ttl: .seconds(10), logger: logger)
            #expect(leases.count == 256)
            #expect(try await store.renew(leases, ttl: .seconds(10), logger: logger).count == 256)
            let batch = try await store.readBatch(lanes: leases.map(\.lane), limit: 100, logger: logger).rows
            #expect(batch.count == 7)
            let first = try #require(batch.first)
            #expect(try await store.retry([RetryDecision(id: first.id, delayMilliseconds: 0, error: "test")], leases: leases, logger: logger).rows == 1)
            try await store.release(leases, logger: logger)
            #expect(try await store.releaseAllOwned(logger: logger) == 0)
            try await store.deregister(logger: logger)
        }

        // A relay process as the relay role drains the outbox: publishes and dead-letters.
        let drained = try await ChildProcess.runRelay(
            ["run", "--stop-when-drained", "--http-address", "off", "--relay-id", roles.relay, "--poll-interval", "200ms"],
            environment: ChildProcess.environment([
                "OUTBOX_DATABASE_URL": url(as: roles.relay), "OUTBOX_KAFKA_BROKERS": TestServices.brokers,
                "OUTBOX_SCHEMA": fixture.schema.rawValue, "OUTBOX_LOG_LEVEL": "warning",
            ]),
            timeout: .seconds(90))
        #expect(drained.code == 0, "relay as \(roles.relay): \(drained.stderr.suffix(3000))")
        #expect(!drained.stderr.contains("permission denied"), "\(drained.stderr.suffix(3000))")
        #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0)
        #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.dead_letters WHERE reason = 'invalid_topic'", as: Int64.self) == 1)
        #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.lanes WHERE owner IS NOT NULL", as: Int64.self) == 0, "released on stop")
        #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.relays", as: Int64.self) == 0, "deregistered on stop")
        #expect(try await fixture.readTopic().count >= 6)

        // The admin role migrates, reads status and replays dead letters.
        let admin = ChildProcess.environment(["OUTBOX_DATABASE_URL": url(as: roles.admin), "OUTBOX_SCHEMA": fixture.schema.rawValue])
        let migrate = try await ChildProcess.runRelay(["migrate"], environment: admin)
        #expect(migrate.code == 0, "migrate as admin: \(migrate.stderr)")
        let status = try await ChildProcess.runRelay(["status"], environment: admin)
        #expect(status.code == 0, "status as admin: \(status.stderr)")
        let replay = try await ChildProcess.runRelay(
            ["dlq", "replay", "--reason", "invalid_topic", "--to-topic", fixture.topic, "--actor", "test"], environment: admin)
        #expect(replay.code == 0, "dlq replay as admin: \(replay.stderr)")
        #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 1)
    }

    /// Runs deploy/sql/roles.sql with psql as the test's superuser.
    static func applyRolesScript(schema: String, _ roles: Roles) async throws -> (code: Int32?, stdout: String, stderr: String) {
        let psql = try #require(
            (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
                .map { "\($0)/psql" }.first { FileManager.default.isExecutableFile(atPath: $0) },
            "psql is not on PATH")
        let child = try ChildProcess(
            psql,
            [
                TestServices.databaseURL, "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-v", "schema=\(schema)",
                "-v", "relay_role=\(roles.relay)", "-v", "app_role=\(roles.app)", "-v", "admin_role=\(roles.admin)",
                "-f", DeployKit.deploy.appendingPathComponent("sql/roles.sql").path,
            ],
            environment: ProcessInfo.processInfo.environment)
        let code = await child.wait(timeout: .seconds(60))
        return (code, child.standardOutput, child.standardError)
    }

    /// The test database's URL with another user (trust authentication on loopback: no password).
    static func url(as role: String) -> String {
        var components = URLComponents(string: TestServices.databaseURL)!
        components.user = role
        components.password = nil
        return components.string!
    }

    static func withClient(as role: String, _ body: @Sendable (PostgresClient) async throws -> Void) async throws {
        let settings = try RelaySettings(values: ["OUTBOX_DATABASE_URL": url(as: role)])
        let client = PostgresClient(configuration: settings.database.clientConfiguration(), backgroundLogger: TestServices.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await body(client)
        }
    }

    static func expectDenied(_ statement: String, on client: PostgresClient, fixture: OutboxFixture, role: String) async throws {
        let sql = statement.replacingOccurrences(of: "{schema}", with: fixture.schema.rawValue)
        do {
            try await client.query(PostgresQuery(unsafeSQL: sql), logger: fixture.logger)
            Issue.record("the \(role) role may run: \(sql)")
        } catch let error as PSQLError {
            #expect(error.serverInfo?[.sqlState] == "42501", "\(sql): \(String(reflecting: error))")
        }
    }

    static func drop(_ roles: Roles, _ fixture: OutboxFixture) async throws {
        let names = [roles.relay, roles.app, roles.admin].joined(separator: ", ")
        try await fixture.client.query(PostgresQuery(unsafeSQL: "DROP OWNED BY \(names)"), logger: fixture.logger)
        try await fixture.client.query(PostgresQuery(unsafeSQL: "DROP ROLE \(names)"), logger: fixture.logger)
    }
}
