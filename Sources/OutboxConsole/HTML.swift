/// HTML built from escaped text: every value that came from the database (payloads, keys, topics,
/// error texts: attacker-controlled data) goes through ``HTML/text(_:)`` or an attribute, so a
/// payload of `<script>` renders as those characters. Markup is written only by this module.
struct HTML: Sendable, CustomStringConvertible {
    private(set) var markup: String

    init(trusted markup: String = "") { self.markup = markup }

    var description: String { markup }

    /// Text content, escaped.
    static func text(_ value: String) -> HTML { HTML(trusted: escape(value)) }

    static func escape(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters other than tab and newline would be invisible or break layout.
                if scalar.value < 0x20 && scalar != "\n" && scalar != "\t" || scalar.value == 0x7F {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    mutating func append(_ other: HTML) { markup += other.markup }
    mutating func append(trusted markup: String) { self.markup += markup }
    mutating func append(text value: String) { markup += Self.escape(value) }

    /// `<tag attr="value"…>content</tag>` with escaped attribute values.
    static func element(_ tag: String, _ attributes: KeyValuePairs<String, String> = [:], _ content: HTML = HTML()) -> HTML {
        HTML(trusted: "<\(tag)\(attributeText(attributes))>\(content.markup)</\(tag)>")
    }

    static func element(_ tag: String, _ attributes: KeyValuePairs<String, String> = [:], text: String) -> HTML {
        element(tag, attributes, .text(text))
    }

    static func attributeText(_ attributes: KeyValuePairs<String, String>) -> String {
        attributes.map { " \($0.key)=\"\(escape($0.value))\"" }.joined()
    }

    static func + (lhs: HTML, rhs: HTML) -> HTML { HTML(trusted: lhs.markup + rhs.markup) }
}

extension Array where Element == HTML {
    func joined() -> HTML { HTML(trusted: map(\.markup).joined()) }
}
