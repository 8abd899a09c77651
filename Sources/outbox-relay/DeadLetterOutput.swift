import Foundation
import OutboxRelay

/// Presentation shared by the `dlq` commands: aligned tables for people, JSON for scripts.
enum DeadLetterOutput {
    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func time(_ date: Date?) -> String {
        guard let date else { return "-" }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    /// Columns padded to their widest cell; the last column is not padded.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    /// At most `length` characters, with an ellipsis when cut; control characters made visible.
    static func clip(_ text: String, _ length: Int) -> String {
        let flat = printable(text, keepNewlines: false)
        return flat.count <= length ? flat : String(flat.prefix(length - 1)) + "…"
    }

    static func printable(_ text: String, keepNewlines: Bool) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n" where keepNewlines: out.append("\n")
            case "\n": out.append("\\n")
            case "\t": out.append("\\t")
            case "\r": out.append("\\r")
            default:
                if scalar.properties.generalCategory == .control {
                    out.append(String(format: "\\u{%02x}", scalar.value))
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    static func summaryTable(_ rows: [DeadLetterSummary]) -> String {
        table(
            ["ID", "DEAD AT", "TOPIC", "KEY", "REASON", "ATTEMPTS", "STATUS", "ERROR"],
            rows.map { row in
                let status = row.replayID.map { "\(row.status.rawValue) as \($0)" } ?? row.status.rawValue
                return [
                    "\(row.id)", time(row.deadAt), clip(row.topic, 40), clip(row.keyDisplay, 24), row.reason,
                    "\(row.attempts)", status, clip(row.error, 70),
                ]
            })
    }

    /// A printable view of a payload: text (up to `limit` characters) or a hex dump of its start.
    static func payloadPreview(_ payload: Data, limit: Int = 1024) -> String {
        if payload.isEmpty { return "" }
        if let text = String(validating: Array(payload), as: UTF8.self) {
            let shown = printable(String(text.prefix(limit)), keepNewlines: true)
            let rest = text.count > limit ? "\n… (\(payload.count) bytes in all; --raw writes them to stdout)" : ""
            return shown + rest
        }
        let bytes = Array(payload.prefix(256))
        var lines: [String] = []
        for offset in stride(from: 0, to: bytes.count, by: 16) {
            let chunk = bytes[offset..<min(offset + 16, bytes.count)]
            let hex = chunk.map { String(format: "%02x", $0) }.joined(separator: " ")
            let ascii = String(chunk.map { (0x20...0x7e).contains($0) ? Character(UnicodeScalar($0)) : "." })
            lines.append(String(format: "%08x  ", offset) + hex.padding(toLength: 47, withPad: " ", startingAt: 0) + "  " + ascii)
        }
        if payload.count > bytes.count { lines.append("… (\(payload.count) bytes in all; --raw writes them to stdout)") }
        return lines.joined(separator: "\n")
    }

    /// "status dead, topic orders, reason invalid_topic": what was asked, for "no match" messages.
    static func describe(_ filter: DeadLetterFilter) -> String {
        var parts = ["status \(filter.statuses.map(\.rawValue).joined(separator: "|"))"]
        if !filter.topics.isEmpty { parts.append("topic \(filter.topics.joined(separator: "|"))") }
        if !filter.keys.isEmpty { parts.append("key \(filter.keys.joined(separator: "|"))") }
        if !filter.reasons.isEmpty { parts.append("reason \(filter.reasons.map(\.rawValue).joined(separator: "|"))") }
        if !filter.ids.isEmpty { parts.append("id \(filter.ids.map(String.init).joined(separator: "|"))") }
        if let since = filter.since { parts.append("since \(since)") }
        if let until = filter.until { parts.append("until \(until)") }
        return parts.joined(separator: ", ")
    }
}
