import Foundation
import Logging
import Outbox
import OutboxRelay
import OutboxTestSupport
import PostgresNIO
import Testing

/// Reads start after each lane's floor instead of at the start of the table (`LaneCursors`). These
/// are the rows a floor must never pass: one committed after higher ids were published and
/// deleted (its transaction was open all along), and the rows behind a retry that waited while
/// reads went past them.
///
/// Each runs with both walks of a batch read (`ReadShape`): one relay would always walk in id order.
@Suite(.serialized) struct ReadCursorTests {
    /// A transaction enqueues one keyed and one keyless message and stays open while 3,000 later
    /// messages (every lane) are committed, published and deleted, and reads go on long after;
    /// then it commits. Its two rows, with ids below everything published, must be published too.
    @Test(.timeLimit(.minutes(3)), arguments: [ReadWalk.idOrder, .perLane]) func aMessageCommittedAfterHigherIDsWerePublishedIsPublished(walk: ReadWalk) async throws {
        try await OutboxFixture.with { fixture in
            let writer = OutboxWriter(schema: fixture.schema)
            let expected = Recorded()
            let opened = AsyncStream<[Int64]>.makeStream()
            let commit = AsyncStream<Void>.makeStream()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await EnqueueOrderTests.transaction(fixture) { connection in
                        let ids = try await writer.enqueue(
                            [
                                OutboxMessage(topic: fixture.topic, key: "late", payload: "late keyed"),
                                OutboxMessage(topic: fixture.topic, key: nil, payload: "late keyless"),
                            ], on: connection, logger: fixture.logger)
                        opened.continuation.yield(ids)
                        for await _ in commit.stream { break }
                    }
                }
                var iterator = opened.stream.makeAsyncIterator()
                let lateIDs = try #require(await iterator.next())
                group.addTask {
                    try await fixture.runRelay(until: {
                        guard expected.count == 3_002 else { return false }
                        return try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0
                    }, timeout: .seconds(60), walk: walk)
                }
                // 50 keys a transaction: over 64 an enqueue locks whole lanes, and would wait for
                // the open transaction's lane.
                for round in 0..<60 {
                    let messages = (0..<50).map { OutboxMessage(topic: fixture.topic, key: "key-\(round * 50 + $0)", payload: "\(round)") }
                    expected.add(zip(try await fixture.enqueue(messages), messages.map { $0.key! }))
                }
                #expect(lateIDs.allSatisfy { id in expected.all.keys.allSatisfy { $0 > id } })
                // Everything committed is published and deleted; the reads go on past it for a while.
                let deadline = ContinuousClock.now + .seconds(60)
                while try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) > 0 {
                    guard ContinuousClock.now < deadline else { throw ReadCursorTestError("the committed messages were not drained") }
                    try await Task.sleep(for: .milliseconds(100))
                }
                try await Task.sleep(for: .seconds(1))
                expected.add([(lateIDs[0], "late"), (lateIDs[1], "")])
                commit.continuation.yield()
                commit.continuation.finish()
                try await group.waitForAll()
            }
            let ledger = try Ledger(records: try await fixture.readTopic(), expectedIDs: Set(expected.all.keys))
            #expect(ledger.lost.isEmpty, "\(ledger)")
        }
    }
}

extension ReadCursorTests {
    /// The reviewer's case: a snapshot lists only running transactions below one past the highest
    /// *completed* one, so a transaction with a higher id than every completed one is invisible in
    /// it. U takes its transaction id, T enqueues (a higher transaction id, the lower outbox id) and
    /// stays open, U enqueues and commits: the relay's next read sees U's row and no running
    /// transaction at all. T's row, committed later, must still be published.
    @Test(.timeLimit(.minutes(3)), arguments: [ReadWalk.idOrder, .perLane]) func aMessageOfATransactionNewerThanEveryCompletedOneIsNotPassed(walk: ReadWalk) async throws {
        try await OutboxFixture.with { fixture in
            let writer = OutboxWriter(schema: fixture.schema)
            let expected = Recorded()
            let lateEnqueued = AsyncStream<Int64>.makeStream()
            let commitLate = AsyncStream<Void>.makeStream()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await fixture.runRelay(until: {
                        guard expected.count == 3 else { return false }
                        return try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0
                    }, timeout: .seconds(30), walk: walk)
                }
                // The relay is idle (its lanes claimed) before U begins.
                try await Task.sleep(for: .seconds(2))
                let uHasItsID = AsyncStream<Void>.makeStream()
                group.addTask {
                    for await _ in uHasItsID.stream { break }
                    try await EnqueueOrderTests.transaction(fixture) { t in
                        let ids = try await writer.enqueue(
                            [OutboxMessage(topic: fixture.topic, key: "late", payload: "late")], on: t, logger: fixture.logger)
                        lateEnqueued.continuation.yield(ids[0])
                        for await _ in commitLate.stream { break }
                    }
                }
                let early = try await EnqueueOrderTests.transaction(fixture) { u in
                    _ = try await u.query("SELECT pg_current_xact_id()", logger: fixture.logger)
                    uHasItsID.continuation.yield()
                    var iterator = lateEnqueued.stream.makeAsyncIterator()
                    let late = try #require(await iterator.next())
                    expected.add([(late, "late")])
                    let ids = try await writer.enqueue(
                        [OutboxMessage(topic: fixture.topic, key: "early", payload: "early")], on: u, logger: fixture.logger)
                    #expect(ids[0] > late)
                    return ids[0]
                }
                expected.add([(early, "early")])
                // U's row is read and published while T is open; then more rows go by.
                try await Task.sleep(for: .seconds(1))
                let more = try await fixture.enqueue([OutboxMessage(topic: fixture.topic, key: "more", payload: "more")])
                try await Task.sleep(for: .seconds(1))
                commitLate.continuation.yield()
                commitLate.continuation.finish()
                expected.add([(more[0], "more")])
                try await group.waitForAll()
            }
            let ledger = try Ledger(records: try await fixture.readTopic(), expectedIDs: Set(expected.all.keys))
            #expect(ledger.lost.isEmpty, "\(ledger)")
        }
    }
}

extension ReadCursorTests {
    /// A key waiting for a retry is passed by every read until the retry is due; then the read
    /// starts below the retry. Here 1,200 messages of the key wait behind it (batch size 500), so
    /// that read is cut off long before the end of them: the rest must follow, in order, although
    /// the lane's floor had long passed them (the reviewer's second case).
    @Test(.timeLimit(.minutes(3)), arguments: [ReadWalk.idOrder, .perLane]) func aKeyWithMoreThanABatchBehindItsRetryIsPublishedInOrder(walk: ReadWalk) async throws {
        try await OutboxFixture.with { fixture in
            var messages = (0..<1_200).map { OutboxMessage(topic: fixture.topic, key: "hot", payload: "hot-\($0)") }
            messages += (0..<1_000).map { OutboxMessage(topic: fixture.topic, key: "key-\($0)", payload: "other-\($0)") }
            let ids = try await fixture.enqueue(messages)
            // As a relay leaves a message it will retry: its key waits until then.
            _ = try await fixture.scalar(
                "WITH r AS (UPDATE {schema}.messages SET attempts = 1, available_at = now() + interval '3 seconds' WHERE id = \(ids[0]) RETURNING 1) SELECT count(*) FROM r",
                as: Int64.self)
            try await fixture.runRelay(until: {
                try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0
            }, timeout: .seconds(60), walk: walk)
            let ledger = try Ledger(
                records: try await fixture.readTopic(), expected: Dictionary(uniqueKeysWithValues: zip(ids, messages.map { $0.key! })))
            #expect(ledger.lost.isEmpty, "\(ledger)")
            #expect(ledger.orderViolations.isEmpty, "\(ledger)")
        }
    }
}

struct ReadCursorTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
