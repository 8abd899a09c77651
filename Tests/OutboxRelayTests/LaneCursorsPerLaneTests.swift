import Foundation
import NIOCore
import Testing

@testable import OutboxRelay

/// The per-lane walk (`ReadShape.perLane`): each lane moves by what its own part of the read
/// covered, never past a row the limit may have cut off, and a lane with more than its quota asks
/// for more only while the batch has room.
@Suite struct LaneCursorsPerLaneTests {
    private let leases = [LaneLease(lane: 1, epoch: 1), LaneLease(lane: 2, epoch: 1)]

    private func read(_ ids: [(Int64, Int16)], oldest: Int64) -> BatchRead {
        BatchRead(
            rows: ids.map {
                PendingMessage(
                    id: $0.0, topic: "t", key: ByteBuffer(string: "k\($0.0)"), lane: $0.1, payload: ByteBuffer(), headersJSON: "{}",
                    contentType: nil, type: nil, createdAt: Date(), attempts: 0)
            }, oldestRunningTransaction: oldest)
    }

    /// Cursors whose next read's snapshot moves the frontier to 5,000 (a row of lane 2 read,
    /// delivered and deleted by transaction 5,001) while both lanes' floors are still 0.
    private func cursorsBeforeTheFrontierMovesTo5000() -> LaneCursors {
        var cursors = LaneCursors()
        cursors.sync(with: leases)
        cursors.observe(read([(5_000, 2)], oldest: 5), lanes: [1, 2], limit: 10)
        cursors.sending([5_000])
        cursors.finished([5_000], lanes: [1, 2])
        cursors.wrote(transaction: 5_001)
        return cursors
    }

    private func laneReads(_ shape: ReadShape) -> [ReadShape.LaneRead] {
        guard case .perLane(let reads) = shape else { return [] }
        return reads
    }

    @Test func theWalkIsPerLaneFromAnEighthOfTheLanesDownUnlessChosen() {
        #expect(ReadShape.cheaper(held: 256, of: 256) == .idOrder)
        #expect(ReadShape.cheaper(held: 129, of: 256) == .idOrder)
        #expect(ReadShape.cheaper(held: 128, of: 256) == .idOrder)
        #expect(ReadShape.cheaper(held: 33, of: 256) == .idOrder)
        #expect(ReadShape.cheaper(held: 32, of: 256) == .perLane)
        #expect(ReadShape.cheaper(held: 1, of: 256) == .perLane)
        #expect(ReadShape.cheaper(held: 0, of: 256) == .idOrder)
        let cursors = cursorsBeforeTheFrontierMovesTo5000()
        #expect(cursors.shape(for: [1, 2], limit: 10) == .perLane(laneReads(cursors.shape(for: [1, 2], limit: 10, walk: .perLane))))
        #expect(cursors.shape(for: [1, 2], limit: 10, walk: .idOrder) == .idOrder(start: 0))
        #expect(cursors.shape(for: [1, 2], limit: 10, totalLanes: 3) == .idOrder(start: 0))
    }

    @Test func aLaneThatFilledItsQuotaIsCoveredToItsLastRowTheOthersToTheFrontier() {
        var cursors = cursorsBeforeTheFrontierMovesTo5000()
        let shape = cursors.shape(for: [1, 2], limit: 10, walk: .perLane)
        #expect(laneReads(shape) == [.init(lane: 1, after: 0, quota: 5), .init(lane: 2, after: 0, quota: 5)])
        // Lane 1 fills its quota (it may have more after 1,005); lane 2 has nothing.
        let rows: [(Int64, Int16)] = [(1_001, 1), (1_002, 1), (1_003, 1), (1_004, 1), (1_005, 1)]
        cursors.observe(read(rows, oldest: 5_002), lanes: [1, 2], shape: shape, limit: 10)
        cursors.sending(rows.map(\.0))
        #expect(cursors.floor(of: 1) == 1_005, "not past what the quota cut off")
        #expect(cursors.floor(of: 2) == 5_000, "everything up to the frontier was looked at")
        // Lane 1 had more than its quota while the batch had room: it asks twice as many.
        let next = laneReads(cursors.shape(for: [1, 2], limit: 10, walk: .perLane))
        #expect(next == [.init(lane: 1, after: 1_005, quota: 10), .init(lane: 2, after: 5_000, quota: 5)])
        // A read of lane 1 returning less than half its quota takes it back to its share.
        cursors.observe(read([(1_006, 1)], oldest: 5_002), lanes: [1, 2], shape: .perLane(next), limit: 10)
        #expect(laneReads(cursors.shape(for: [1, 2], limit: 10, walk: .perLane)).map(\.quota) == [5, 5])
    }

    @Test func aBatchTheLimitMayHaveCutMovesEachLaneOnlyToItsLastRow() {
        var cursors = cursorsBeforeTheFrontierMovesTo5000()
        // Limit 3 over 2 lanes: quotas of 2 each, 4 rows asked, the first 3 by id kept.
        let shape = cursors.shape(for: [1, 2], limit: 3, walk: .perLane)
        #expect(laneReads(shape).map(\.quota) == [2, 2])
        let rows: [(Int64, Int16)] = [(1_001, 1), (1_002, 1), (1_003, 2)]
        cursors.observe(read(rows, oldest: 5_002), lanes: [1, 2], shape: shape, limit: 3)
        cursors.sending(rows.map(\.0))
        #expect(cursors.floor(of: 1) == 1_002)
        #expect(cursors.floor(of: 2) == 1_003, "lane 2 returned less than its quota, but its 1,004 may have been cut")
        #expect(laneReads(cursors.shape(for: [1, 2], limit: 3, walk: .perLane)).map(\.quota) == [2, 2], "no room: no lane grows")
    }

    @Test func aLaneOfACutBatchThatReturnedNothingStaysWhereItWas() {
        var cursors = cursorsBeforeTheFrontierMovesTo5000()
        let shape = cursors.shape(for: [1, 2], limit: 2, walk: .perLane)
        let rows: [(Int64, Int16)] = [(1_001, 1), (1_002, 1)]
        cursors.observe(read(rows, oldest: 5_002), lanes: [1, 2], shape: shape, limit: 2)
        cursors.sending(rows.map(\.0))
        #expect(cursors.floor(of: 1) == 1_002)
        #expect(cursors.floor(of: 2) == 0)
    }

    @Test func quotasTogetherStayWithinTwiceTheLimit() {
        var cursors = cursorsBeforeTheFrontierMovesTo5000()
        cursors.sync(with: (1...4).map { LaneLease(lane: $0, epoch: 1) })
        // Limit 40 over 4 lanes: 10 each. Three lanes fill their quota with 30 rows in all.
        var shape = cursors.shape(for: [1, 2, 3, 4], limit: 40, walk: .perLane)
        var id: Int64 = 1_000
        for _ in 0..<4 {
            var rows: [(Int64, Int16)] = []
            for asked in laneReads(shape) where asked.lane != 4 {
                for _ in 0..<asked.quota where rows.count < 39 {
                    id += 1
                    rows.append((id, asked.lane))
                }
            }
            cursors.observe(read(rows, oldest: 5_002), lanes: [1, 2, 3, 4], shape: shape, limit: 40)
            cursors.sending(rows.map(\.0))
            shape = cursors.shape(for: [1, 2, 3, 4], limit: 40, walk: .perLane)
            #expect(laneReads(shape).reduce(0) { $0 + $1.quota } <= 80)
        }
    }
}
