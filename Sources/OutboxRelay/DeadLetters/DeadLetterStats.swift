import Foundation

/// How many dead letters there are per topic and reason, and over which span of time — the first
/// thing to look at when the dead-letter count alerts ("one topic, one reason, since 10:02" points
/// at a cause; a spread over everything points at the broker or the config).
public struct DeadLetterStats: Sendable, Codable, Equatable {
    public struct Group: Sendable, Codable, Equatable {
        public var topic: String
        public var reason: String
        public var count: Int64
        public var oldestDeadAt: Date
        public var newestDeadAt: Date
    }

    public var groups: [Group]
    public var total: Int64 { groups.reduce(0) { $0 + $1.count } }
}
