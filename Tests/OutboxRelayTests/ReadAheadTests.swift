import Foundation
import NIOCore
import Testing
@testable import OutboxRelay

/// The read-ahead may only be used for lanes held throughout with the same epoch: any other row
/// could have been acknowledged or re-read by another owner in between.
@Suite struct ReadAheadTests {
    private func row(_ id: Int64, lane: Int16) -> PendingMessage {
        PendingMessage(
            id: id, topic: "t", key: ByteBuffer(string: "k\(lane)"), lane: lane, payload: ByteBuffer(), headersJSON: "{}",
            contentType: nil, type: nil, createdAt: Date(), attempts: 0)
    }

    @Test func unchangedLeasesKeepEveryRowInOrder() {
        let leases = [LaneLease(lane: 1, epoch: 7), LaneLease(lane: 2, epoch: 3)]
        let ahead = BatchPipeline.ReadAhead(leases: leases, rows: [row(10, lane: 1), row(11, lane: 2), row(12, lane: 1)])
        #expect(ahead.entries(validFor: leases).map(\.row.id) == [10, 11, 12])
    }

    @Test func lanesLostOrReclaimedUnderANewEpochAreDropped() {
        let ahead = BatchPipeline.ReadAhead(
            leases: [LaneLease(lane: 1, epoch: 7), LaneLease(lane: 2, epoch: 3), LaneLease(lane: 3, epoch: 1)],
            rows: [row(10, lane: 1), row(11, lane: 2), row(12, lane: 3), row(13, lane: 1)])
        // Lane 2 was lost, lane 3 came back with a new epoch, lane 4 is new (read next time).
        let now = [LaneLease(lane: 1, epoch: 7), LaneLease(lane: 3, epoch: 2), LaneLease(lane: 4, epoch: 1)]
        #expect(ahead.entries(validFor: now).map(\.row.id) == [10, 13])
    }

    @Test func nothingSurvivesWhenNoLaneIsStillHeld() {
        let ahead = BatchPipeline.ReadAhead(leases: [LaneLease(lane: 1, epoch: 7)], rows: [row(10, lane: 1)])
        #expect(ahead.entries(validFor: []).isEmpty)
        #expect(ahead.entries(validFor: [LaneLease(lane: 1, epoch: 8)]).isEmpty)
    }
}

extension BatchPipeline.ReadAhead {
    /// A read-ahead of `rows` (what its read said besides them does not matter here).
    init(leases: [LaneLease], rows: [PendingMessage]) {
        self.init(leases: leases, read: BatchRead(rows: rows, oldestRunningTransaction: 0))
    }
}
