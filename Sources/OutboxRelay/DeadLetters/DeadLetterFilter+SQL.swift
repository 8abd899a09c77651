import Foundation
import NIOCore
import PostgresNIO

extension DeadLetterFilter {
    /// The filter as a SQL condition over `dead_letters` aliased `d`, appending its values to
    /// `binds` (placeholders continue after what `binds` already holds). Only values travel as
    /// parameters; the text is built from fixed fragments, so no operator input reaches the SQL.
    func condition(binds: inout PostgresBindings) -> String {
        var parts: [String] = []
        func placeholder<T: PostgresNonThrowingEncodable & Sendable>(_ value: T) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        parts.append("d.status = ANY(\(placeholder(statuses.map(\.rawValue)))::text[])")
        if !topics.isEmpty { parts.append("d.topic = ANY(\(placeholder(topics))::text[])") }
        if !keys.isEmpty {
            parts.append("d.key = ANY(\(placeholder(keys.map { ByteBuffer(string: $0) }))::bytea[])")
        }
        if !reasons.isEmpty { parts.append("d.reason = ANY(\(placeholder(reasons.map(\.rawValue)))::text[])") }
        if !ids.isEmpty { parts.append("d.id = ANY(\(placeholder(ids))::int8[])") }
        if let since { parts.append("d.dead_at >= \(Self.time(since, placeholder))") }
        if let until { parts.append("d.dead_at < \(Self.time(until, placeholder))") }
        return parts.joined(separator: " AND ")
    }

    private static func time(_ bound: DeadLetterTimeBound, _ placeholder: (Int64) -> String) -> String {
        switch bound {
        case .at(let date):
            // Microseconds since the epoch: PostgreSQL's own resolution, exact in an int8.
            let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
            return "to_timestamp(0) + \(placeholder(micros)) * interval '1 microsecond'"
        case .ago(let duration):
            return "now() - \(placeholder(duration.milliseconds)) * interval '1 millisecond'"
        }
    }
}
