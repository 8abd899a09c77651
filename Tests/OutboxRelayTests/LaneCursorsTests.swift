import Foundation
import NIOCore
import Testing

@testable import OutboxRelay

/// Where reads start: never past a row that could still be read (a late commit, a row handed back
/// unfinished, a row passed while its key was parked or held by a retry), and past everything settled.
@Suite struct LaneCursorsTests {
    private func row(_ id: Int64, lane: Int16) -> PendingMessage {
        PendingMessage(
            id: id, topic: "t", key: ByteBuffer(string: "k\(id)"), lane: lane, payload: ByteBuffer(), headersJSON: "{}",
            contentType: nil, type: nil, createdAt: Date(), attempts: 0)
    }

    /// A read whose snapshot had transaction `oldest` as the oldest running one.
    private func read(_ ids: [(Int64, Int16)], oldest: Int64, due: [(lane: Int16, id: Int64)] = []) -> BatchRead {
        BatchRead(rows: ids.map { row($0.0, lane: $0.1) }, oldestRunningTransaction: oldest, dueRetries: due)
    }

    private let leases = [LaneLease(lane: 1, epoch: 1), LaneLease(lane: 2, epoch: 1)]
    private let both: Set<Int16> = [1, 2]

    /// A read whose rows are all sent and finished by a write that took transaction `xid`.
    private func settled(_ cursors: inout LaneCursors, _ ids: [(Int64, Int16)], oldest: Int64, xid: Int64, limit: Int) {
        cursors.observe(read(ids, oldest: oldest), lanes: [1, 2], limit: limit)
        cursors.sending(ids.map(\.0))
        cursors.finished(ids.map(\.0), lanes: both)
        cursors.wrote(transaction: xid)
    }

    // MARK: Frontier

    @Test func aTickIsFinalOnceEveryTransactionBelowItsBoundHasEnded() {
        var frontier = Frontier()
        frontier.observe(oldestRunning: 50, highestID: 100)
        frontier.observe(oldestRunning: 90, highestID: nil)
        #expect(frontier.id == 0, "no write since the read: nothing bounds the transactions that may hold lower ids")
        frontier.bound(byTransaction: 60)
        frontier.observe(oldestRunning: 59, highestID: 150)
        #expect(frontier.id == 0, "transaction 59 (below the bound) still runs")
        frontier.bound(byTransaction: 70)
        frontier.observe(oldestRunning: 60, highestID: nil)
        #expect(frontier.id == 100, "everything below 60 ended; the second tick's bound is 70")
        frontier.observe(oldestRunning: 70, highestID: nil)
        #expect(frontier.id == 150)
    }

    /// The reviewer's case: the snapshot lists no running transaction (an open one newer than every
    /// completed one is in no list), and there is no write after the read yet.
    @Test func aSnapshotListingNothingRunningIsNotEnough() {
        var frontier = Frontier()
        frontier.observe(oldestRunning: 1_000, highestID: 42)
        frontier.observe(oldestRunning: 1_000, highestID: nil)
        #expect(frontier.id == 0)
        frontier.bound(byTransaction: 1_001)
        frontier.observe(oldestRunning: 1_000, highestID: nil)
        #expect(frontier.id == 0, "transaction 1000 runs, and may have drawn an id below 42")
        frontier.observe(oldestRunning: 1_002, highestID: nil)
        #expect(frontier.id == 42)
    }

    @Test func aTransactionThatStaysOpenHoldsTheFrontierWithBoundedMemory() {
        var frontier = Frontier()
        for id in 1...1_000 {
            frontier.observe(oldestRunning: 5, highestID: Int64(id) * 10)
            frontier.bound(byTransaction: 5 + Int64(id))
        }
        #expect(frontier.id == 0, "transaction 5 is still open")
        frontier.observe(oldestRunning: 2_000, highestID: nil)
        #expect(frontier.id == 10_000, "once it ends, the newest tick (kept in place of the last) is reached")
    }

    // MARK: Floors

    @Test func aNewLaneIsReadFromTheBeginning() {
        var cursors = LaneCursors()
        cursors.sync(with: leases)
        #expect(cursors.start(for: [1, 2]) == 0)
    }

    @Test func aReadCutOffByItsLimitCoversUpToItsLastRowOnceThatIsFinal() {
        var cursors = LaneCursors()
        cursors.sync(with: leases)
        settled(&cursors, [(10, 1), (11, 2), (12, 1)], oldest: 77, xid: 80, limit: 3)
        #expect(cursors.start(for: [1, 2]) == 0, "no later snapshot yet says transactions below 80 ended")
        cursors.observe(read([(13, 1), (14, 2), (15, 1)], oldest: 80), lanes: [1, 2], limit: 3)
        #expect(cursors.floor(of: 1) == 12, "up to 12 is final and covered; 13 and 15 are open")
        #expect(cursors.floor(of: 2) == 12)
    }

    @Test func aReadNotCutOffCoversEverythingUpToTheFrontier() {
        var cursors = LaneCursors()
        cursors.sync(with: leases)
        settled(&cursors, [(10, 1), (11, 2)], oldest: 5, xid: 6, limit: 100)
        cursors.observe(read([], oldest: 7), lanes: [1, 2], limit: 100)
        #expect(cursors.start(for: [1, 2]) == 11, "transactions below 6 ended: all up to 11 is final")
    }

    @Test func rowsReadAndNotFinishedHoldTheirLaneUntilFinished() {
        var cursors = LaneCursors()
        cursors.sync(with: leases)
        settled(&cursors, [(1, 1)], oldest: 5, xid: 6, limit: 100)
        cursors.observe(read([(10, 1), (11, 2), (12, 1)], oldest: 7), lanes: [1, 2], limit: 100)
        // A read-ahead dropped, or rows not sent because their lease ran out: never sent.
        #expect(cursors.floor(of: 1) == 1)
        cursors.sending([10, 11, 12])
        cursors.finished([10, 11], lanes: both)
        cursors.wrote(transaction: 8)
        cursors.returned([12])
        cursors.observe(read([], oldest: 9), lanes: [1, 2], limit: 100)
        #expect(cursors.floor(of: 1) == 11, "12 came back unfinished (an outage, held back): read from it again")
        #expect(cursors.floor(of: 2) == 12)
        cursors.observe(read([(12, 1)], oldest: 9), lanes: [1, 2], limit: 100)
        cursors.sending([12])
        #expect(cursors.floor(of: 1) == 12, "in flight: reads leave it out by id, it does not hold the floor")
        cursors.finished([12], lanes: both)
        #expect(cursors.floor(of: 1) == 12)
    }

    @Test func rowsOfLanesThatDidNotPassTheFenceStayOpen() {
        var cursors = LaneCursors()
        cursors.sync(with: leases)
        settled(&cursors, [(1, 1)], oldest: 5, xid: 6, limit: 100)
        cursors.observe(read([(10, 1), (11, 2)], oldest: 7), lanes: [1, 2], limit: 100)
        cursors.sending([10, 11])
        cursors.finished([10, 11], lanes: [2])
        cursors.returned([10, 11])
        cursors.wrote(transaction: 8)
        cursors.observe(read([], oldest: 9), lanes: [1, 2], limit: 100)
        #expect(cursors.floor(of: 1) == 9, "lane 1 was not written (its lease ran out locally): 10 is still there")
        #expect(cursors.floor(of: 2) == 11)
    }

    @Test func aDueRetryBelowTheFloorTakesItsLaneBackToIt() {
        var cursors = LaneCursors()
        cursors.sync(with: leases)
        settled(&cursors, [(100, 1), (200, 2)], oldest: 5, xid: 6, limit: 100)
        settled(&cursors, [], oldest: 7, xid: 8, limit: 100)
        #expect(cursors.floor(of: 1) == 200)
        // Row 10 of lane 1 was retried; its key's rows 11… were passed while it waited. Now it is
        // due: the read started at 9 and was cut off at 60, long before the end of what it held.
        cursors.observe(read([(10, 1), (60, 1)], oldest: 9, due: [(lane: 1, id: 10)]), lanes: [1, 2], limit: 2)
        #expect(cursors.floor(of: 1) == 9, "10 and 60 are open")
        cursors.sending([10, 60])
        cursors.finished([10, 60], lanes: both)
        #expect(cursors.floor(of: 1) == 60, "up to where the read was cut off, not 200: rows 61-200 of the key are read next")
        #expect(cursors.floor(of: 2) == 200, "lane 2 keeps its floor")
    }

    @Test func aStragglerGroupSettledRewindsItsLanesToItsFirstRow() {
        var cursors = LaneCursors()
        cursors.sync(with: leases)
        cursors.observe(read([(10, 1), (11, 2)], oldest: 5), lanes: [1, 2], limit: 100)
        cursors.sending([10, 11])
        cursors.finished([11], lanes: both)
        cursors.wrote(transaction: 6)
        // 10 is a straggler: later rows of its key are passed (parked) while reads go on.
        settled(&cursors, [(20, 2), (21, 2)], oldest: 7, xid: 8, limit: 100)
        cursors.observe(read([], oldest: 9), lanes: [1, 2], limit: 100)
        #expect(cursors.floor(of: 1) == 21)
        cursors.finished([10], lanes: both)
        cursors.rewind(lane: 1, before: 10)
        #expect(cursors.floor(of: 1) == 9, "the parked key's later rows are read again")
        #expect(cursors.floor(of: 2) == 21)
    }

    @Test func aLaneHeldAgainUnderAnotherEpochStartsOverAndForgetsItsRows() {
        var cursors = LaneCursors()
        cursors.sync(with: leases)
        settled(&cursors, [(10, 1), (11, 2)], oldest: 5, xid: 6, limit: 100)
        cursors.observe(read([(12, 1)], oldest: 7), lanes: [1, 2], limit: 100)
        #expect(cursors.floor(of: 1) == 11)
        cursors.sync(with: [LaneLease(lane: 1, epoch: 2), LaneLease(lane: 2, epoch: 1)])
        #expect(cursors.floor(of: 1) == 0, "another relay held it meanwhile: anything may be there")
        #expect(cursors.floor(of: 2) == 11)
        cursors.sync(with: [LaneLease(lane: 2, epoch: 1)])
        cursors.sync(with: [LaneLease(lane: 1, epoch: 2), LaneLease(lane: 2, epoch: 1)])
        #expect(cursors.floor(of: 1) == 0)
        #expect(cursors.floor(of: 2) == 11)
    }

    @Test func theReadStartsAtTheLowestFloorOfItsLanes() {
        var cursors = LaneCursors()
        cursors.sync(with: leases)
        settled(&cursors, [(10, 1), (11, 2)], oldest: 5, xid: 6, limit: 100)
        cursors.observe(read([(30, 2)], oldest: 7), lanes: [1, 2], limit: 100)
        #expect(cursors.start(for: [1, 2]) == 11)
        settled(&cursors, [], oldest: 7, xid: 8, limit: 100)
        cursors.observe(read([], oldest: 9), lanes: [1, 2], limit: 100)
        #expect(cursors.start(for: [1, 2]) == 29, "lane 2's open row 30")
        #expect(cursors.start(for: [1]) == 30)
    }
}
