import Foundation
import OutboxRelay
import OutboxTestSupport

/// What the broker holds, checked against what was enqueued: the proof behind every figure.
///
/// Counted by consuming every partition from offset 0 to its end (never trusting offsets the
/// broker reports). Per key, the *first* delivery of each message must come in outbox-id order;
/// later copies are duplicates (at-least-once), bounded by one in-flight batch per lane per fault.
struct LedgerCheck: Codable {
    var expected: Int
    var consumed: Int
    var unique: Int
    var lost: Int
    var duplicates: Int
    var orderViolations: Int
    var deadLettered: Int
    var foreign: Int

    var clean: Bool { lost == 0 && orderViolations == 0 }

    /// The summary of the shared `Ledger` (the integration tests judge their runs with the same one).
    static func check(records: [ConsumedRecord], expectedIDs: Set<Int64>, deadLettered: Set<Int64>) throws -> LedgerCheck {
        let ledger = try Ledger(records: records, expectedIDs: expectedIDs, deadLettered: deadLettered)
        return LedgerCheck(
            expected: expectedIDs.count, consumed: ledger.records - ledger.unexpectedRecords, unique: ledger.distinctPublished,
            lost: ledger.lost.count, duplicates: ledger.duplicates, orderViolations: ledger.orderViolations.count,
            deadLettered: deadLettered.count, foreign: ledger.unexpectedRecords)
    }
}
