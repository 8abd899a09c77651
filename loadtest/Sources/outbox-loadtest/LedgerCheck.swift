import Foundation
import OutboxEnvelope
@_spi(Benchmark) import OutboxRelay

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

    static func check(records: [ConsumedRecord], expectedIDs: Set<Int64>, deadLettered: Set<Int64>) throws -> LedgerCheck {
        var seen = Set<Int64>()
        var duplicates = 0
        var foreign = 0
        var violations = 0
        var lastFirstByKey: [Data: Int64] = [:]
        for record in records.sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            let envelope = try Envelope(serializedBytes: record.value)
            guard expectedIDs.contains(envelope.sequence) else {
                foreign += 1
                continue
            }
            guard seen.insert(envelope.sequence).inserted else {
                duplicates += 1
                continue
            }
            if let last = lastFirstByKey[envelope.key], last > envelope.sequence { violations += 1 }
            lastFirstByKey[envelope.key] = envelope.sequence
        }
        let expected = expectedIDs.count
        let lost = expectedIDs.count - seen.count - deadLettered.subtracting(seen).count
        return LedgerCheck(
            expected: expected, consumed: records.count - foreign, unique: seen.count, lost: lost, duplicates: duplicates,
            orderViolations: violations, deadLettered: deadLettered.count, foreign: foreign)
    }
}
