import Foundation

/// Parses human durations used in settings and filters: `250ms`, `15s`, `2m`, `1h`, `7d`, `2w`, or
/// combinations like `1m30s` or `1d12h`.
public enum DurationParser {
    public static func parse(_ text: String) -> Duration? {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return nil }
        var total = Duration.zero
        var number = ""
        var unit = ""
        func flush() -> Bool {
            guard let value = Double(number), value >= 0 else { return false }
            switch unit {
            case "ms": total += .milliseconds(value)
            case "s": total += .milliseconds(value * 1000)
            case "m": total += .milliseconds(value * 60_000)
            case "h": total += .milliseconds(value * 3_600_000)
            case "d": total += .milliseconds(value * 86_400_000)
            case "w": total += .milliseconds(value * 604_800_000)
            default: return false
            }
            number = ""
            unit = ""
            return true
        }
        for character in text {
            if character.isNumber || character == "." {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(character)
            } else if character.isLetter {
                guard !number.isEmpty else { return nil }
                unit.append(character)
            } else {
                return nil
            }
        }
        guard flush() else { return nil }
        return total
    }
}
