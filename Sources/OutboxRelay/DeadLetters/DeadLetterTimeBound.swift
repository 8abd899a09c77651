import Foundation

/// One end of a `dead_at` time range (`--since`, `--until`, `--older-than`).
///
/// Operators think in both forms: "since the deploy at 10:00" (an ISO-8601 time) and "in the last
/// two hours" (a duration, meaning that long ago). A duration is kept as a duration and turned into
/// a time by the *database* clock (`now() - interval`), like every other time decision in the
/// outbox, so a client with a skewed clock selects the same rows as `SELECT ... WHERE dead_at > now()
/// - interval '2 hours'` would. In the audit record a duration is stored as typed; it is relative to
/// the audit row's `at`.
public enum DeadLetterTimeBound: Sendable, Equatable, CustomStringConvertible {
    /// A fixed instant.
    case at(Date)
    /// This long before the database's `now()`.
    case ago(Duration)

    /// Parses `2026-11-25T10:00:00Z`, `2026-11-25T11:00:00+01:00`, `2026-11-25T10:00:00.250Z`,
    /// `2026-11-25` (midnight UTC), or a duration ago: `90s`, `15m`, `2h`, `7d`, `2w`, `1d12h`
    /// (an optional trailing ` ago` is accepted).
    public static func parse(_ text: String, option: String) throws(DeadLetterFilterError) -> DeadLetterTimeBound {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let date = parseDate(trimmed) { return .at(date) }
        var durationText = trimmed
        if durationText.hasSuffix(" ago") { durationText.removeLast(4) }
        if let duration = DurationParser.parse(durationText) { return .ago(duration) }
        throw DeadLetterFilterError(
            option: option,
            problem: "\(String(reflecting: text)) is neither a time nor a duration; write an ISO-8601 time like 2026-11-25T10:00:00Z (or 2026-11-25) or a duration ago like 30m, 2h or 7d")
    }

    /// The instant this bound stands for, given the current time (for comparing two bounds).
    public func resolved(now: Date) -> Date {
        switch self {
        case .at(let date): return date
        case .ago(let duration): return now.addingTimeInterval(-duration.seconds)
        }
    }

    /// How the bound was given, normalized: an ISO-8601 time, or the duration in the parser's units.
    public var description: String {
        switch self {
        case .at(let date): return Self.format(date)
        case .ago(let duration): return "\(Self.formatDuration(duration)) ago"
        }
    }

    /// The form stored in the audit record's filter.
    var auditValue: String {
        switch self {
        case .at(let date): return Self.format(date)
        case .ago(let duration): return Self.formatDuration(duration)
        }
    }

    static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = date.timeIntervalSince1970.rounded() == date.timeIntervalSince1970
            ? [.withInternetDateTime] : [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    private static func formatDuration(_ duration: Duration) -> String {
        let milliseconds = duration.milliseconds
        if milliseconds % 1000 != 0 { return "\(milliseconds)ms" }
        let seconds = milliseconds / 1000
        if seconds % 86400 == 0 { return "\(seconds / 86400)d" }
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }

    private static func parseDate(_ text: String) -> Date? {
        guard let first = text.first, first.isNumber, text.contains("-") else { return nil }
        let formatter = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [
            [.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds], [.withFullDate],
        ] {
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }
}
