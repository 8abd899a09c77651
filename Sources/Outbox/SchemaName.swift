/// A validated PostgreSQL schema name.
///
/// The schema is the one identifier that is spliced into SQL text (it cannot be a bind parameter),
/// so it is restricted to a safe, unquoted form: lower-case letters, digits and underscores,
/// starting with a letter or underscore, at most 63 bytes (PostgreSQL's `NAMEDATALEN - 1`).
/// Anything else — quotes, semicolons, spaces, upper case — is refused before it reaches SQL.
public struct SchemaName: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) throws(InvalidSchemaName) {
        guard Self.isValid(rawValue) else { throw InvalidSchemaName(value: rawValue) }
        self.rawValue = rawValue
    }

    public static let `default`: SchemaName = try! SchemaName("outbox")

    public var description: String { rawValue }

    /// The NOTIFY channel relays LISTEN on for this outbox.
    public var notificationChannel: String { "\(rawValue)_messages" }

    public static func isValid(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard let first = bytes.first, bytes.count <= 63 else { return false }
        func isLetter(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || b == 0x5F }
        func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        return isLetter(first) && bytes.allSatisfy { isLetter($0) || isDigit($0) }
    }
}

/// A schema name that could be used to inject SQL or that PostgreSQL would fold or reject.
public struct InvalidSchemaName: Error, CustomStringConvertible {
    public let value: String
    public var description: String {
        "invalid schema name \(String(reflecting: value)): use 1-63 characters of a-z, 0-9 and _, starting with a letter or _ (for example \"outbox\")"
    }
}
