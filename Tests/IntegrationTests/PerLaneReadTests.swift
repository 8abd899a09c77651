import Foundation
import Logging
import Outbox
import OutboxTestSupport
import PostgresNIO
import Testing

@testable import OutboxRelay

/// The per-lane walk's SQL against the real PostgreSQL: one lane's backlog gets its quota of the
/// batch and the other lanes the rest (the id walk hands the whole batch to the oldest backlog),
/// each lane in id order; a due retry takes only its own lane back.
@Suite(.serialized) struct PerLaneReadTests {
    @Test func aLanesBacklogDoesNotFillTheBatchWhileOtherLanesWait() async throws {
        try await OutboxFixture.with { fixture in
            let logger = fixture.logger
            let hot = try await fixture.enqueue((0..<2_000).map { OutboxMessage(topic: fixture.topic, key: "hot", payload: "\($0)") })
            let hotLane = try await fixture.scalar("SELECT {schema}.lane_of('hot'::bytea, 0)", as: Int16.self)
            // 100 other keys, each in a lane of its own (not the hot key's), enqueued after the backlog.
            var others: [String] = []
            var used: Set<Int16> = [hotLane]
            var index = 0
            while others.count < 100 {
                let key = "other-\(index)"
                index += 1
                if used.insert(try await fixture.scalar("SELECT {schema}.lane_of('\(key)'::bytea, 0)", as: Int16.self)).inserted {
                    others.append(key)
                }
            }
            let otherIDs = try await fixture.enqueue(others.map { OutboxMessage(topic: fixture.topic, key: $0, payload: $0) })
            let store = RelayStore(client: fixture.client, schema: fixture.schema, relayID: "per-lane-test")
            _ = try await store.heartbeat(RelayIdentity(host: "test", pid: 1, version: "test"), liveWithin: .seconds(10), logger: logger)
            let leases = try await store.claim(count: 256, ttl: .seconds(30), logger: logger)
            #expect(leases.count == 256)
            var cursors = LaneCursors()
            cursors.sync(with: leases)
            let lanes = leases.map(\.lane)

            let byID = try await store.readBatch(
                limit: 500, shape: cursors.shape(for: lanes, limit: 500, walk: .idOrder), lanes: lanes, logger: logger)
            #expect(byID.rows.map(\.id) == Array(hot.prefix(500)), "the id walk: the oldest backlog takes the batch")

            let shape = cursors.shape(for: lanes, limit: 500, walk: .perLane)
            let perLane = try await store.readBatch(limit: 500, shape: shape, lanes: lanes, logger: logger)
            let ids = perLane.rows.map(\.id)
            #expect(ids == ids.sorted(), "the batch is in id order")
            #expect(Set(otherIDs).isSubset(of: Set(ids)), "every waiting lane is in the batch")
            let hotRows = perLane.rows.filter { $0.lane == hotLane }.map(\.id)
            #expect(hotRows == Array(hot.prefix(hotRows.count)), "the hot lane from its oldest row, in order")
            #expect(hotRows.count == LaneCursors.share(of: 500, lanes: 256), "its quota, not the batch")

            // The other lanes' rows are delivered; the hot lane's first row is to be retried at
            // once (its second comes back unsent): only that lane goes back to it.
            cursors.observe(perLane, lanes: lanes, shape: shape, limit: 500)
            cursors.sending(ids)
            let delivered = perLane.rows.filter { $0.lane != hotLane }.map(\.id)
            let written = try await store.ack(ids: delivered, leases: leases, logger: logger)
            #expect(written.rows == delivered.count)
            cursors.finished(delivered, lanes: written.lanesHeld)
            let retried = try await store.retry(
                [RetryDecision(id: hotRows[0], delayMilliseconds: 0, error: "test")], leases: leases, logger: logger)
            #expect(retried.rows == 1)
            cursors.finished([hotRows[0]], lanes: retried.lanesHeld)
            cursors.returned(hotRows.dropFirst())
            let again = try await store.readBatch(
                limit: 500, shape: cursors.shape(for: lanes, limit: 500, walk: .perLane), lanes: lanes, logger: logger)
            #expect(again.dueRetries.map(\.lane) == [hotLane])
            let hotAgain = again.rows.filter { $0.lane == hotLane }.map(\.id)
            #expect(hotAgain.first == hotRows[0], "the retried row first, then the rest of its key")
            #expect(hotAgain == hotAgain.sorted())
            #expect(again.rows.allSatisfy { $0.lane == hotLane }, "the other lanes had nothing more")
            try await store.release(leases, logger: logger)
        }
    }
}
