/// Kafka's topic-name rules, checked on our side.
///
/// librdkafka does not validate topic names locally, and Tansu auto-creates whatever topic a producer names
/// (it has no name check either), so without this check a record for `bad topic!` would be "delivered" to a
/// topic no consumer expects. Apache Kafka's rules: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
public enum KafkaTopicName {
    public static let maximumLength = 249

    /// Why `name` is not a valid Kafka topic name, or `nil` when it is.
    public static func problem(with name: String) -> String? {
        let bytes = name.utf8
        if bytes.isEmpty { return "a topic name cannot be empty" }
        if bytes.count > maximumLength {
            return "topic name is \(bytes.count) characters long; Kafka allows at most \(maximumLength)"
        }
        if name == "." || name == ".." { return "\"\(name)\" is not a valid topic name" }
        for byte in bytes where !isLegal(byte) {
            return "topic name \"\(name)\" contains characters outside [a-zA-Z0-9._-]"
        }
        return nil
    }

    /// Whether `name` is a valid Kafka topic name.
    public static func isValid(_ name: String) -> Bool { problem(with: name) == nil }

    private static func isLegal(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}
