import Foundation
import Logging
import Outbox
import PostgresNIO
import Testing

@testable import OutboxRelay

/// What a relay says of itself in `relays` (migration 7), against the real PostgreSQL: a restarted
/// relay under the same id shows its new incarnation; a relay that stepped back stays visible with
/// its reason but out of the count the fleet divides the lanes by; roles that could write
/// heartbeats before the migration can write the new columns after it.
@Suite(.serialized) struct RelayHeartbeatTests {
    static func records(_ fixture: OutboxFixture) async throws -> [String: RelayRecord] {
        let schema = fixture.schema.rawValue
        return try await fixture.client.withConnection { connection in
            let all = try await RelayRecord.readAll(on: connection, schema: schema, leaseTTL: .seconds(10), logger: fixture.logger)
            return Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0) })
        }
    }

    @Test func aRelayRestartedUnderTheSameIdShowsItsNewIncarnation() async throws {
        try await OutboxFixture.with { fixture in
            let store = RelayStore(client: fixture.client, schema: fixture.schema, relayID: "pod-0")
            let first = Date(timeIntervalSince1970: 1_800_000_000)
            _ = try await store.heartbeat(
                RelayIdentity(host: "pod-0", pid: 1, version: "1.0.0", startedAt: first), liveWithin: .seconds(10), logger: fixture.logger)
            let second = first.addingTimeInterval(3_600)
            _ = try await store.heartbeat(
                RelayIdentity(host: "pod-0", pid: 1, version: "1.1.0", startedAt: second),
                readiness: .notReady("database has not answered yet"), liveWithin: .seconds(10), logger: fixture.logger)
            let record = try #require(try await Self.records(fixture)["pod-0"])
            #expect(record.version == "1.1.0", "the heartbeat rewrites the version")
            #expect(abs(record.startedAt.timeIntervalSince(second)) < 0.001, "up since the restart: \(record.startedAt)")
            #expect(record.ready == false && record.readiness == "database has not answered yet")
            #expect(record.state == "not ready: database has not answered yet")
        }
    }

    @Test func aSteppedBackRelayIsSeenWithItsReasonButNotCountedAsAMember() async throws {
        try await OutboxFixture.with { fixture in
            let a = RelayStore(client: fixture.client, schema: fixture.schema, relayID: "a")
            let b = RelayStore(client: fixture.client, schema: fixture.schema, relayID: "b")
            let identity = RelayIdentity(host: "test", pid: 1, version: "test")
            let logger = fixture.logger
            _ = try await a.heartbeat(identity, readiness: .ready("ok: holds 128 lanes"), liveWithin: .seconds(10), logger: logger)
            #expect(try await b.heartbeat(identity, liveWithin: .seconds(10), logger: logger) == 2)

            let reason = Readiness.notReady("broker unreachable since 12s (Local: Broker transport failure)")
            #expect(
                try await a.heartbeat(identity, steppedBack: true, readiness: reason, liveWithin: .seconds(10), logger: logger) == 1,
                "a stepped-back relay counts the others, not itself")
            #expect(try await b.heartbeat(identity, liveWithin: .seconds(10), logger: logger) == 1, "b's fair share is every lane")
            let records = try await Self.records(fixture)
            let record = try #require(records["a"])
            #expect(record.alive && record.steppedBack && record.ready == false && record.needsAttention)
            #expect(record.state == "stepped back, its lanes are with the others: broker unreachable since 12s (Local: Broker transport failure)")
            #expect(records["b"]?.needsAttention == false)

            _ = try await a.heartbeat(identity, readiness: .ready("ok: holds 0 lanes"), liveWithin: .seconds(10), logger: logger)
            #expect(try await b.heartbeat(identity, liveWithin: .seconds(10), logger: logger) == 2, "rejoined")
        }
    }

    /// Before migration 7 a role could update `heartbeat_at` only; the migration grants it the new
    /// columns, so relays upgraded after it heartbeat without roles.sql being re-run first. A role
    /// without that grant gets nothing.
    @Test func theMigrationGrantsTheNewColumnsToRolesThatWroteHeartbeats() async throws {
        let writer = TestServices.uniqueName("hb_writer")
        let reader = TestServices.uniqueName("hb_reader")
        let columns = ["host", "pid", "version", "started_at", "stepped_back", "ready", "readiness"]
        try await OutboxFixture.with { fixture in
            let s = fixture.schema.rawValue
            for statement in [
                "CREATE ROLE \(writer) NOLOGIN", "CREATE ROLE \(reader) NOLOGIN",
                // The schema as migration 6 left it.
                "ALTER TABLE \(s).relays DROP COLUMN stepped_back, DROP COLUMN ready, DROP COLUMN readiness",
                "DELETE FROM \(s).schema_migrations WHERE version = 7",
                "GRANT UPDATE (heartbeat_at, wants_wakeup) ON \(s).relays TO \(writer)",
                "GRANT SELECT ON \(s).relays TO \(reader)",
            ] {
                try await fixture.client.query(PostgresQuery(unsafeSQL: statement), logger: fixture.logger)
            }
            #expect(try await Migrator(schema: fixture.schema).migrate(client: fixture.client, logger: fixture.logger) == [7])
            for column in columns {
                func mayUpdate(_ role: String) async throws -> Bool {
                    try await fixture.scalar("SELECT has_column_privilege('\(role)', '\(s).relays', '\(column)', 'UPDATE')", as: Bool.self)
                }
                #expect(try await mayUpdate(writer), "\(writer) may update \(column)")
                #expect(try await !mayUpdate(reader), "\(reader) may not update \(column)")
            }
            for role in [writer, reader] {
                for statement in ["REVOKE ALL ON \(s).relays FROM \(role)", "DROP ROLE \(role)"] {
                    try await fixture.client.query(PostgresQuery(unsafeSQL: statement), logger: fixture.logger)
                }
            }
        }
    }
}
