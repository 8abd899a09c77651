import Foundation
import OutboxEnvelope
@testable import OutboxRelay
import OutboxTestSupport
import PostgresNIO
import Testing

/// The envelope id a consumer deduplicates on (`<source>/<outbox id>`) is the same whichever relay
/// publishes a message: the outbox records its source (migration 4), relays without
/// `OUTBOX_SOURCE` use it, and a relay configured with another one refuses to start.
@Suite(.serialized) struct SourceIdentityTests {
    /// Two relays starting together on a new outbox: the second one's insert waits for the first's
    /// to commit, and then its statement's snapshot (taken before) shows no recorded source. It
    /// must use the one the first recorded. (It decoded a NULL and exited 1 at start-up: seen as a
    /// relay missing from a fleet test's lanes and a load-test relay exiting 1.)
    @Test func aRelayRecordingTheSourceWhileAnotherDoesUsesTheOthers() async throws {
        try await OutboxFixture.with { fixture in
            let inserted = AsyncStream<Void>.makeStream()
            let commit = AsyncStream<Void>.makeStream()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await fixture.client.withTransaction(logger: fixture.logger) { connection in
                        try await connection.query(
                            PostgresQuery(
                                unsafeSQL: "INSERT INTO \(fixture.schema.rawValue).identity (source, recorded_by) VALUES ('first', 'relay-1')"),
                            logger: fixture.logger)
                        inserted.continuation.yield()
                        for await _ in commit.stream { break }
                    }
                }
                var iterator = inserted.stream.makeAsyncIterator()
                _ = await iterator.next()
                group.addTask {
                    // By then the second relay's insert waits for the first transaction.
                    try await Task.sleep(for: .milliseconds(500))
                    commit.continuation.yield()
                    commit.continuation.finish()
                }
                let store = RelayStore(client: fixture.client, schema: fixture.schema, relayID: "relay-2")
                #expect(try await store.recordedSource(wanted: "second", logger: fixture.logger) == "first")
                try await group.waitForAll()
            }
        }
    }

    @Test func everyRelayPublishesUnderTheOutboxsRecordedSource() async throws {
        try await Fleet.with { fleet in
            let a = try await fleet.start("a")
            try await fleet.waitUntil("a holds every lane", timeout: .seconds(30)) { try await fleet.lanesOwned(by: a) == 256 }
            var expected = try await fleet.enqueue(500, keys: 50)
            try await fleet.waitUntil("a drained", timeout: .seconds(30)) { try await fleet.pending() == 0 }
            #expect(try await fleet.fixture.scalar("SELECT source FROM {schema}.identity", as: String.self) == "outbox")

            // A relay configured with another source refuses to start, naming both and the fix.
            let b = try await fleet.start("b", extra: ["--source", "elsewhere"])
            try await fleet.waitUntil("b refuses to start", timeout: .seconds(30)) {
                fleet.relays[b]?.standardError.contains("OUTBOX_SOURCE is") == true
            }
            let refusal = fleet.relays[b]?.standardError ?? ""
            let code = await fleet.stop(b, SIGTERM)
            #expect(code != nil && code != 0, "b exited by itself, with an error: \(code.map(String.init) ?? "nothing")")
            #expect(refusal.contains(#"OUTBOX_SOURCE is "elsewhere""#) && refusal.contains(#""outbox""#), "\(refusal.suffix(1500))")
            #expect(refusal.contains("identity SET source = 'elsewhere'"), "names the way to change it for every relay")

            // One configured with the recorded source runs, and publishes under the same ids.
            let c = try await fleet.start("c", extra: ["--source", "outbox"])
            #expect(await fleet.stop(a, SIGTERM) == 0)
            expected.merge(try await fleet.enqueue(500, keys: 50, first: 500)) { $1 }
            try await fleet.drainAndStop(expectingExitZero: ["c"])
            let records = try await fleet.fixture.readTopic()
            var bySource: [String: Int] = [:]
            for record in records {
                let envelope = try Envelope(serializedBytes: record.value)
                #expect(envelope.id == "outbox/\(envelope.sequence)" && envelope.source == "outbox")
                let relay = record.headers.first { $0.name == "outbox-relay" }.map { String(decoding: $0.value, as: UTF8.self) } ?? "-"
                bySource[relay, default: 0] += 1
            }
            #expect(bySource[a] ?? 0 > 0 && bySource[c] ?? 0 > 0, "both published: \(bySource)")
            #expect(try await fleet.ledger(expected).lost.isEmpty)
        }
    }
}
