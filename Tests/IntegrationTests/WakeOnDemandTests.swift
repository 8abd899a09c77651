import Foundation
import Logging
import Outbox
import OutboxTestSupport
import PostgresNIO
import Testing

@testable import OutboxRelay

/// `enqueue` notifies only while a relay asked for it (migration 6), against the real PostgreSQL:
/// no notification (and so no commit-time lock) while no relay waits; an idle relay asks, and asks
/// again once it has drained a burst; a row of a transaction that enqueued before
/// the flag was set (so notified nobody) is found by the relay's doubling polls, not after the
/// whole poll interval.
@Suite(.serialized) struct WakeOnDemandTests {
    /// Whether `action` makes a notification arrive on the outbox's channel within a second.
    private func notifies(_ fixture: OutboxFixture, _ action: @escaping @Sendable () async throws -> Void) async throws -> Bool {
        try await fixture.client.withConnection { connection in
            try await connection.listen(on: "\(fixture.schema.rawValue)_messages") { notifications in
                try await action()
                return try await withThrowingTaskGroup(of: Bool.self) { group in
                    group.addTask {
                        for try await _ in notifications { return true }
                        return false
                    }
                    group.addTask {
                        try await Task.sleep(for: .seconds(1))
                        return false
                    }
                    let first = try await group.next() ?? false
                    group.cancelAll()
                    return first
                }
            }
        }
    }

    @Test func enqueueNotifiesOnlyWhileARelayWantsAWakeup() async throws {
        try await OutboxFixture.with { fixture in
            let message = OutboxMessage(topic: fixture.topic, key: "k", payload: "p")
            #expect(try await !notifies(fixture) { _ = try await fixture.enqueue([message]) }, "no relay: no notification")
            let store = RelayStore(client: fixture.client, schema: fixture.schema, relayID: "wake-test")
            _ = try await store.heartbeat(RelayIdentity(host: "test", pid: 1, version: "test"), liveWithin: .seconds(10), logger: fixture.logger)
            #expect(try await !notifies(fixture) { _ = try await fixture.enqueue([message]) }, "a relay at work: none")
            try await store.wantWakeup(true, logger: fixture.logger)
            #expect(try await notifies(fixture) { _ = try await fixture.enqueue([message]) }, "a relay waiting: notified")
            try await store.wantWakeup(false, logger: fixture.logger)
            #expect(try await !notifies(fixture) { _ = try await fixture.enqueue([message]) })
        }
    }

    @Test(.timeLimit(.minutes(2))) func anIdleRelayAsksForAWakeupAndAgainAfterDrainingABurst() async throws {
        try await OutboxFixture.with { fixture in
            let wanting = "SELECT count(*) FROM {schema}.relays WHERE wants_wakeup"
            let burst = Flag()
            try await fixture.runRelay(until: {
                let asking = try await fixture.scalar(wanting, as: Int64.self) == 1
                guard burst.isSet else {
                    // Idle with its lanes, it asks; then a burst for it to drain.
                    guard asking else { return false }
                    _ = try await fixture.enqueue((0..<2_000).map { OutboxMessage(topic: fixture.topic, key: "k\($0 % 50)", payload: "\($0)") })
                    burst.set()
                    return false
                }
                guard asking else { return false }
                return try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0
            }, timeout: .seconds(60), pollInterval: .seconds(60))
            #expect(try await fixture.readTopic().count == 2_000)
        }
    }

    @Test(.timeLimit(.minutes(2))) func aRowEnqueuedBeforeTheFlagWasSetIsFoundByTheDoublingPolls() async throws {
        try await OutboxFixture.with { fixture in
            let commit = AsyncStream<Void>.makeStream()
            let idleFor = Recorded()
            let committed = Flag()
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Enqueued while no relay wants a wake-up: this commit will notify nobody.
                let enqueued = AsyncStream<Int64>.makeStream()
                group.addTask {
                    try await EnqueueOrderTests.transaction(fixture) { connection in
                        let ids = try await OutboxWriter(schema: fixture.schema).enqueue(
                            [OutboxMessage(topic: fixture.topic, key: "old", payload: "old")], on: connection, logger: fixture.logger)
                        enqueued.continuation.yield(ids[0])
                        for await _ in commit.stream { break }
                    }
                    committed.set()
                }
                var iterator = enqueued.stream.makeAsyncIterator()
                _ = try #require(await iterator.next())
                group.addTask {
                    // A poll interval of a minute: only the doubling polls can find the row in time.
                    try await fixture.runRelay(until: {
                        guard try await fixture.scalar("SELECT count(*) FROM {schema}.relays WHERE wants_wakeup", as: Int64.self) == 1
                        else { return false }
                        if idleFor.count == 0 {
                            idleFor.add([(0, "")])
                            try await Task.sleep(for: .seconds(2))
                            idleFor.add([(1, "")])
                            commit.continuation.yield()
                            commit.continuation.finish()
                        }
                        guard committed.isSet else { return false }
                        return try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0
                    }, timeout: .seconds(20), pollInterval: .seconds(60))
                }
                try await group.waitForAll()
            }
            let records = try await fixture.readTopic()
            #expect(records.count == 1)
        }
    }
}
