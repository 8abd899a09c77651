import Foundation

/// Which dead letters a `dlq` command looks at. Every field narrows the selection (AND); values
/// given more than once within one field widen it (OR), so `--reason a --reason b --topic t` means
/// "topic t, reason a or b". An empty filter selects every dead letter with the chosen statuses.
///
/// The filter is validated completely before any SQL runs, so a typo never turns into "0 rows"
/// (or worse, into "every row") against the database.
public struct DeadLetterFilter: Sendable, Equatable {
    public var topics: [String]
    /// Message keys, compared with the key's UTF-8 bytes.
    public var keys: [String]
    public var reasons: [DeadLetterReason]
    public var ids: [Int64]
    /// `dead_at >= since`.
    public var since: DeadLetterTimeBound?
    /// `dead_at < until`.
    public var until: DeadLetterTimeBound?
    public var statuses: [DeadLetterStatus]

    public init(
        topics: [String] = [], keys: [String] = [], reasons: [DeadLetterReason] = [], ids: [Int64] = [],
        since: DeadLetterTimeBound? = nil, until: DeadLetterTimeBound? = nil, statuses: [DeadLetterStatus] = [.dead]
    ) {
        self.topics = topics
        self.keys = keys
        self.reasons = reasons
        self.ids = ids
        self.since = since
        self.until = until
        self.statuses = statuses
    }

    /// Builds a filter from command-line text, checking every value.
    ///
    /// - Topics are matched as stored, *not* checked against Kafka's naming rules: dead letters of
    ///   reason `invalid_topic` carry exactly the names Kafka refuses (e.g. `bad topic!`), and an
    ///   operator must be able to select them. Only an empty topic is refused.
    /// - `status` is `dead`, `replayed`, `purged` or `all` (`nil` means `dead`).
    /// - `now` is only used to check that `since` is before `until` when one of them is relative.
    public static func parse(
        topics: [String] = [], keys: [String] = [], reasons: [String] = [], ids: [String] = [],
        since: String? = nil, until: String? = nil, status: String? = nil, now: Date = Date()
    ) throws(DeadLetterFilterError) -> DeadLetterFilter {
        var filter = DeadLetterFilter()
        for topic in topics {
            guard !topic.isEmpty else {
                throw DeadLetterFilterError(option: "--topic", problem: "a topic cannot be empty")
            }
            filter.topics.append(topic)
        }
        for key in keys {
            filter.keys.append(key)
        }
        for text in reasons {
            let name = text.trimmingCharacters(in: .whitespaces).lowercased()
            guard let reason = DeadLetterReason(rawValue: name) else {
                throw DeadLetterFilterError(
                    option: "--reason",
                    problem: "unknown reason \(String(reflecting: text)); use one of \(DeadLetterReason.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            filter.reasons.append(reason)
        }
        for text in ids {
            guard let id = Int64(text.trimmingCharacters(in: .whitespaces)), id > 0 else {
                throw DeadLetterFilterError(
                    option: "--id", problem: "\(String(reflecting: text)) is not a dead-letter id (a positive whole number, as `dlq list` shows)")
            }
            filter.ids.append(id)
        }
        if let since { filter.since = try DeadLetterTimeBound.parse(since, option: "--since") }
        if let until { filter.until = try DeadLetterTimeBound.parse(until, option: "--until") }
        try filter.checkRange(now: now, untilOption: "--until")
        if let status { filter.statuses = try parseStatus(status, option: "--status") }
        return filter
    }

    /// Checks that `since` comes before `until`; a reversed range can only match nothing, which is
    /// almost certainly a mistake (swapped options, or a relative/absolute mix-up).
    public func checkRange(now: Date = Date(), untilOption: String = "--until") throws(DeadLetterFilterError) {
        guard let since, let until else { return }
        guard since.resolved(now: now) < until.resolved(now: now) else {
            throw DeadLetterFilterError(
                option: untilOption,
                problem: "the range is empty: --since \(since) is not before \(untilOption) \(until); swap them or widen the range")
        }
    }

    /// Parses `--status`: one status, or `all`.
    public static func parseStatus(_ text: String, option: String, allowed: [DeadLetterStatus] = DeadLetterStatus.allCases)
        throws(DeadLetterFilterError) -> [DeadLetterStatus]
    {
        let name = text.trimmingCharacters(in: .whitespaces).lowercased()
        if name == "all" { return allowed }
        guard let status = DeadLetterStatus(rawValue: name), allowed.contains(status) else {
            throw DeadLetterFilterError(
                option: option,
                problem: "\(String(reflecting: text)) is not one of \((allowed.map(\.rawValue) + ["all"]).joined(separator: ", "))")
        }
        return [status]
    }

    /// Parses a `--limit`-like count: a whole number of at least 1.
    public static func parseCount(_ text: String, option: String) throws(DeadLetterFilterError) -> Int {
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value >= 1 else {
            throw DeadLetterFilterError(option: option, problem: "\(String(reflecting: text)) is not a whole number of at least 1")
        }
        return value
    }

    /// Whether the filter narrows anything beyond the statuses.
    public var isUnrestricted: Bool {
        topics.isEmpty && keys.isEmpty && reasons.isEmpty && ids.isEmpty && since == nil && until == nil
    }

    /// The filter as stored in `dlq_audit.filter`: only the fields given, in the operator's terms.
    func auditObject() -> [String: Any] {
        var object: [String: Any] = ["status": statuses.map(\.rawValue)]
        if !topics.isEmpty { object["topic"] = topics }
        if !keys.isEmpty { object["key"] = keys }
        if !reasons.isEmpty { object["reason"] = reasons.map(\.rawValue) }
        if !ids.isEmpty { object["id"] = ids }
        if let since { object["since"] = since.auditValue }
        if let until { object["until"] = until.auditValue }
        return object
    }
}
