import Foundation
import OutboxEnvelope
import OutboxRelay

/// The consumer-side ledger of a fault-injection run: every record of the topic, decoded, checked
/// against what was enqueued.
///
/// - **lost**: ids that were expected but never seen on the topic and not dead-lettered;
/// - **duplicates**: extra copies (records minus distinct ids), with the ids involved;
/// - **order violations**: per key, the sequence of *first* occurrences (in partition-offset order;
///   a key always maps to one partition) must be increasing — that is the fleet's promise (later
///   copies of an id are duplicates the consumer drops by envelope id);
/// - **dead-lettered**: ids in the dead-letter table (never counted as lost).
///
/// A record tells which relay produced it by its `outbox-relay` header (the relay id; older
/// records: the envelope `source`, which each relay of a test sets to its own name); the ledger
/// uses that to attribute duplicates and to find records a relay published after it lost the lane.
///
/// Counted by consuming every partition from offset 0 to its end (never trusting offsets the
/// broker reports). Records of ids the run did not enqueue are counted as unexpected and left out
/// of the order check. The integration tests and the load test both judge their runs with it.
public struct Ledger: CustomStringConvertible, Sendable {
    public struct Copy: Hashable, Sendable {
        public var partition: Int32
        public var offset: Int64
        public var source: String
    }

    /// Expected ids (the ones the run must account for) and, where known, their keys.
    public let expected: [Int64: String?]
    public let deadLettered: Set<Int64>
    /// Every copy of every id seen, in partition-offset order.
    public private(set) var copies: [Int64: [Copy]] = [:]
    public private(set) var records = 0
    public private(set) var unexpected: Set<Int64> = []
    /// Records of unexpected ids (another run's, or ones the broker kept across a restart).
    public private(set) var unexpectedRecords = 0
    public private(set) var orderViolations: [(key: String, earlier: Int64, later: Int64)] = []
    public private(set) var keyMismatches = 0
    /// Every record of an expected id, in partition-offset order.
    private var published: [(key: String, id: Int64, source: String)] = []

    /// Records `source` published of a message some other relay had already published a later
    /// message of the same key before (in the partition's order): a relay publishing a lane it no
    /// longer held, from a read taken before it lost it. A relay that takes a lane back later
    /// publishes only messages newer than what the others published, so it never counts here.
    public func stalePublishes(by source: String) -> [(key: String, id: Int64, after: Int64)] {
        var newestByOthers: [String: Int64] = [:]
        var stale: [(key: String, id: Int64, after: Int64)] = []
        for record in published {
            if record.source == source {
                if let newest = newestByOthers[record.key], newest > record.id { stale.append((record.key, record.id, newest)) }
            } else {
                newestByOthers[record.key] = max(newestByOthers[record.key] ?? record.id, record.id)
            }
        }
        return stale
    }

    /// Checks `consumed` against the ids enqueued and their keys.
    public init(records consumed: [ConsumedRecord], expected: [Int64: String], deadLettered: Set<Int64> = []) throws {
        try self.init(records: consumed, expectedKeys: expected.mapValues { Optional($0) }, deadLettered: deadLettered)
    }

    /// Checks `consumed` against the ids enqueued when their keys are not at hand (the key of each
    /// record is then not compared).
    public init(records consumed: [ConsumedRecord], expectedIDs: Set<Int64>, deadLettered: Set<Int64> = []) throws {
        try self.init(
            records: consumed, expectedKeys: Dictionary(uniqueKeysWithValues: expectedIDs.map { ($0, String?.none) }),
            deadLettered: deadLettered)
    }

    private init(records consumed: [ConsumedRecord], expectedKeys expected: [Int64: String?], deadLettered: Set<Int64>) throws {
        self.expected = expected
        self.deadLettered = deadLettered
        var lastFirstByKey: [String: Int64] = [:]
        for record in consumed.sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            let envelope = try Envelope(serializedBytes: record.value)
            let id = envelope.sequence
            let key = String(decoding: envelope.key, as: UTF8.self)
            records += 1
            guard let wanted = expected[id] else {
                unexpected.insert(id)
                unexpectedRecords += 1
                continue
            }
            if let wanted, wanted != key || record.key.map({ String(decoding: $0, as: UTF8.self) }) != key { keyMismatches += 1 }
            let isFirst = copies[id] == nil
            let source = record.headers.first { $0.name == "outbox-relay" }.map { String(decoding: $0.value, as: UTF8.self) }
                ?? envelope.source
            copies[id, default: []].append(Copy(partition: record.partition, offset: record.offset, source: source))
            published.append((key: key, id: id, source: source))
            guard isFirst else { continue }
            if let last = lastFirstByKey[key], last > id {
                orderViolations.append((key: key, earlier: last, later: id))
            }
            lastFirstByKey[key] = max(lastFirstByKey[key] ?? id, id)
        }
    }

    /// Expected ids never published and not dead-lettered.
    public var lost: [Int64] {
        expected.keys.filter { copies[$0] == nil && !deadLettered.contains($0) }.sorted()
    }

    /// Extra copies beyond the first, over all ids.
    public var duplicates: Int { copies.values.reduce(0) { $0 + $1.count - 1 } }

    /// Ids published more than once.
    public var duplicatedIDs: [Int64] { copies.filter { $0.value.count > 1 }.keys.sorted() }

    /// Duplicated ids with at least one copy from `source`.
    public func duplicatedIDs(involving source: String) -> [Int64] {
        copies.filter { $0.value.count > 1 && $0.value.contains { $0.source == source } }.keys.sorted()
    }

    /// How many records each relay (envelope source) produced.
    public var recordsBySource: [String: Int] {
        var counts: [String: Int] = [:]
        for copies in copies.values { for copy in copies { counts[copy.source, default: 0] += 1 } }
        return counts
    }

    public var distinctPublished: Int { copies.count }

    /// Nothing lost and no key out of order: what every run must show.
    public var clean: Bool { lost.isEmpty && orderViolations.isEmpty }

    public var description: String {
        let violations = orderViolations.prefix(5).map { "\($0.key): \($0.later) after \($0.earlier)" }
        return "records \(records), distinct \(distinctPublished), expected \(expected.count), lost \(lost.count)"
            + " \(lost.prefix(10)), duplicates \(duplicates), order violations \(orderViolations.count) \(violations),"
            + " dead-lettered \(deadLettered.count), unexpected \(unexpected.count), key mismatches \(keyMismatches),"
            + " by relay \(recordsBySource.sorted { $0.key < $1.key })"
    }
}
