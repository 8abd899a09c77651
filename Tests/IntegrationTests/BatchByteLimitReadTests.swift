import Foundation
import Logging
import Outbox
import OutboxTestSupport
import PostgresNIO
import Testing

@testable import OutboxRelay

/// The batch byte limit against the real PostgreSQL and broker: a read stops at the row that
/// reaches the limit (a row larger than it comes alone), reads taken by the cursors from there go
/// on with the next row (nothing skipped, in id order), and a relay with a small limit publishes
/// large messages all, in order, once.
@Suite(.serialized) struct BatchByteLimitReadTests {
    /// 100 KiB of payload (and a 5-byte key) per row.
    private static let payload = String(repeating: "x", count: 100 << 10)

    @Test(arguments: [ReadWalk.idOrder, .perLane]) func readsStopAtTheRowThatReachesTheLimitAndGoOnFromIt(walk: ReadWalk) async throws {
        try await OutboxFixture.with { fixture in
            let logger = fixture.logger
            // Ten large rows of one key, then a small row of another lane.
            let ids = try await fixture.enqueue((0..<10).map { _ in OutboxMessage(topic: fixture.topic, key: "large", payload: Self.payload) })
            let largeLane = try await fixture.scalar("SELECT {schema}.lane_of('large'::bytea, 0)", as: Int16.self)
            var small = 0
            while try await fixture.scalar("SELECT {schema}.lane_of('small-\(small)'::bytea, 0)", as: Int16.self) == largeLane { small += 1 }
            let smallID = try await fixture.enqueue([OutboxMessage(topic: fixture.topic, key: "small-\(small)", payload: "s")])[0]
            let smallLane = try await fixture.scalar("SELECT {schema}.lane_of('small-\(small)'::bytea, 0)", as: Int16.self)
            let store = RelayStore(client: fixture.client, schema: fixture.schema, relayID: "byte-limit-test")
            _ = try await store.heartbeat(RelayIdentity(host: "test", pid: 1, version: "test"), liveWithin: .seconds(10), logger: logger)
            let leases = try await store.claim(count: 256, ttl: .seconds(30), logger: logger)
            var cursors = LaneCursors()
            cursors.sync(with: leases)
            let lanes = leases.map(\.lane)
            let row = (100 << 10) + 5

            // The small lane alone first, delivered: the next read's frontier is past every large
            // row, so only the byte cut stops the large lane's floor at what was returned.
            let first = try await store.readBatch(
                limit: 1000, maxBytes: 250 << 10, shape: cursors.shape(for: [smallLane], limit: 1000, walk: walk), lanes: [smallLane],
                logger: logger)
            #expect(first.rows.map(\.id) == [smallID])
            cursors.observe(first, lanes: [smallLane], shape: cursors.shape(for: [smallLane], limit: 1000, walk: walk), limit: 1000)
            cursors.sending([smallID])
            let acked = try await store.ack(ids: [smallID], leases: leases, logger: logger)
            cursors.finished([smallID], lanes: acked.lanesHeld)
            cursors.wrote(transaction: try #require(acked.transactionID))

            // 250 KiB: rows 1 and 2 stay below it, row 3 reaches it and ends the batch.
            var seen: [Int64] = []
            var reads = 0
            while seen.count < ids.count, reads < 20 {
                reads += 1
                let shape = cursors.shape(for: lanes, limit: 1000, walk: walk)
                let read = try await store.readBatch(limit: 1000, maxBytes: 250 << 10, shape: shape, lanes: lanes, logger: logger)
                let remaining = ids.count - seen.count
                #expect(read.rows.count == min(3, remaining), "read \(reads)")
                #expect(read.rows.allSatisfy { $0.payload.readableBytes == 100 << 10 }, "whole rows")
                #expect(read.reachedByteLimit == (read.rows.count * row >= 250 << 10))
                #expect(read.rows.allSatisfy { $0.lane == largeLane })
                cursors.observe(read, lanes: lanes, shape: shape, limit: 1000)
                let batch = read.rows.map(\.id)
                cursors.sending(batch)
                let written = try await store.ack(ids: batch, leases: leases, logger: logger)
                cursors.finished(batch, lanes: written.lanesHeld)
                if let transaction = written.transactionID { cursors.wrote(transaction: transaction) }
                seen += batch
            }
            #expect(seen == ids, "every row once, in id order")

            // A limit below one row: each read returns one row, never none.
            let more = try await fixture.enqueue((0..<2).map { _ in OutboxMessage(topic: fixture.topic, key: "big", payload: Self.payload) })
            let single = try await store.readBatch(
                limit: 1000, maxBytes: 64 << 10, shape: cursors.shape(for: lanes, limit: 1000, walk: walk), lanes: lanes, logger: logger)
            #expect(single.rows.map(\.id) == [more[0]])
            #expect(single.reachedByteLimit)
            try await store.release(leases, logger: logger)
        }
    }

    @Test(.timeLimit(.minutes(3))) func aRelayWithASmallLimitPublishesLargeMessagesAllInOrderOnce() async throws {
        try await OutboxFixture.with { fixture in
            var expected: [Int64: String] = [:]
            for round in 0..<4 {
                let messages = (0..<30).map { OutboxMessage(topic: fixture.topic, key: "key-\($0 % 7)", payload: "\(round)-\($0)" + Self.payload) }
                for (id, message) in zip(try await fixture.enqueue(messages), messages) { expected[id] = message.key! }
            }
            // 512 KiB: batches of 5 of these rows instead of 120 (12 MiB) in one.
            try await fixture.drain(fixture.relayConfiguration { $0.batchMaxBytes = 512 << 10 })
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0)
            let ledger = try Ledger(records: try await fixture.readTopic(), expected: expected)
            #expect(ledger.clean, "\(ledger)")
            #expect(ledger.duplicates == 0, "\(ledger)")
            #expect(ledger.distinctPublished == expected.count)
        }
    }
}
