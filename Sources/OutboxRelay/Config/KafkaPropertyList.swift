import Foundation

/// Parses librdkafka properties written as text: `OUTBOX_KAFKA_PROPERTIES` (many per value) and
/// `--kafka-property` (one per flag).
///
/// librdkafka's own values contain commas (`debug=broker,topic`, `ssl.cipher.suites=A,B`) and a
/// secret may contain anything, so a comma alone cannot separate entries. The rules:
/// - A newline always ends an entry.
/// - A comma ends an entry only when what follows it is a property name and `=`
///   (`[A-Za-z0-9._-]+=`); otherwise it belongs to the value: `debug=broker,topic` is one entry.
/// - `\,` is always a comma of the value, `\\` a backslash, `\n` a newline (for a comma followed by
///   something that looks like `name=`, e.g. a password `ab,x=y` written `ab\,x=y`).
/// - A value in double quotes is taken as it is between them (commas and newlines included), with
///   `\"` for a quote and `\\` for a backslash.
/// - A flag's value is one entry, taken verbatim after the first `=`.
///
/// Errors name the entry's position and, when it has one, the property's name; never any part of
/// a value, which may be a password.
enum KafkaPropertyList {
    struct ParseError: Error, Equatable {
        var problem: String
    }

    /// Every `name=value` of an environment value, in order.
    static func parse(_ text: String) throws(ParseError) -> [(name: String, value: String)] {
        var entries: [(name: String, value: String)] = []
        let characters = Array(text)
        var index = 0
        var position = 0
        while index < characters.count {
            // Skip separators and blank space before an entry.
            while index < characters.count, characters[index] == "," || characters[index] == "\n" || characters[index].isWhitespace {
                index += 1
            }
            guard index < characters.count else { break }
            position += 1
            var name = ""
            while index < characters.count, characters[index] != "=", characters[index] != "\n", characters[index] != "," {
                name.append(characters[index])
                index += 1
            }
            name = name.trimmingCharacters(in: .whitespaces)
            guard index < characters.count, characters[index] == "=", !name.isEmpty else {
                throw ParseError(
                    problem: "entry \(position) is not name=value (for example security.protocol=SASL_SSL); separate entries with newlines or commas")
            }
            guard isPropertyName(name[...]) else {
                throw ParseError(problem: "entry \(position): \(String(reflecting: name)) is not a property name (letters, digits, '.', '_', '-')")
            }
            index += 1  // the "="
            var value = ""
            if index < characters.count, characters[index] == "\"" {
                index += 1
                var closed = false
                while index < characters.count {
                    let character = characters[index]
                    if character == "\\", index + 1 < characters.count, characters[index + 1] == "\"" || characters[index + 1] == "\\" {
                        value.append(characters[index + 1])
                        index += 2
                    } else if character == "\"" {
                        index += 1
                        closed = true
                        break
                    } else {
                        value.append(character)
                        index += 1
                    }
                }
                guard closed else { throw ParseError(problem: "entry \(position) (\(name)): the quoted value has no closing \"") }
                while index < characters.count, characters[index] == " " || characters[index] == "\t" { index += 1 }
                guard index == characters.count || characters[index] == "," || characters[index] == "\n" else {
                    throw ParseError(problem: "entry \(position) (\(name)): text after the closing quote; separate entries with newlines or commas")
                }
            } else {
                while index < characters.count {
                    let character = characters[index]
                    if character == "\\", index + 1 < characters.count, let escaped = unescape(characters[index + 1]) {
                        value.append(escaped)
                        index += 2
                    } else if character == "\n" {
                        break
                    } else if character == ",", startsEntry(characters, at: index + 1) {
                        break
                    } else {
                        value.append(character)
                        index += 1
                    }
                }
                value = value.trimmingCharacters(in: .whitespaces)
            }
            entries.append((name, value))
        }
        return entries
    }

    /// One `--kafka-property` value: the name before the first `=`, the rest verbatim.
    static func parseFlag(_ text: String) throws(ParseError) -> (name: String, value: String) {
        guard let equals = text.firstIndex(of: "=") else {
            throw ParseError(problem: "a --kafka-property is not name=value (for example security.protocol=SASL_SSL)")
        }
        let name = text[..<equals].trimmingCharacters(in: .whitespaces)
        guard isPropertyName(name[...]) else {
            throw ParseError(problem: "\(String(reflecting: name)) is not a property name (letters, digits, '.', '_', '-')")
        }
        return (name, String(text[text.index(after: equals)...]))
    }

    private static func unescape(_ character: Character) -> Character? {
        switch character {
        case ",": ","
        case "\\": "\\"
        case "n": "\n"
        default: nil
        }
    }

    /// Whether `name=` starts at `index` (after optional blanks): the comma before it ends an entry.
    private static func startsEntry(_ characters: [Character], at index: Int) -> Bool {
        var index = index
        while index < characters.count, characters[index] == " " || characters[index] == "\t" { index += 1 }
        let start = index
        while index < characters.count, isNameCharacter(characters[index]) { index += 1 }
        return index > start && index < characters.count && characters[index] == "="
    }

    private static func isPropertyName(_ name: Substring) -> Bool {
        !name.isEmpty && name.allSatisfy(isNameCharacter)
    }

    private static func isNameCharacter(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || character == "." || character == "_" || character == "-")
    }
}
