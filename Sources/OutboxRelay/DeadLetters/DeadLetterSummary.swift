import Foundation
import NIOCore

/// One dead letter as `dlq list` shows it: what, why and where it stands, without the payload.
public struct DeadLetterSummary: Sendable, Codable, Equatable {
    /// The original outbox id (the envelope `sequence` it would have had).
    public var id: Int64
    public var topic: String
    /// The key as text when it is valid UTF-8 (keys enqueued through `enqueue(...)` always are).
    public var key: String?
    /// The key in hex, only when it is not valid UTF-8.
    public var keyHex: String?
    public var reason: String
    public var error: String
    public var attempts: Int32
    public var status: DeadLetterStatus
    public var createdAt: Date
    public var deadAt: Date
    public var replayedAt: Date?
    /// The outbox id the dead letter was replayed as.
    public var replayID: Int64?
    /// Payload size; 0 once purged.
    public var payloadBytes: Int

    /// The key for people: text, `\x…` hex, or `-` for a message without key.
    public var keyDisplay: String {
        if let key { return key }
        if let keyHex { return "\\x" + keyHex }
        return "-"
    }

    static func keyFields(_ key: ByteBuffer?) -> (text: String?, hex: String?) {
        guard let key else { return (nil, nil) }
        let bytes = Array(key.readableBytesView)
        if let text = String(validating: bytes, as: UTF8.self) { return (text, nil) }
        return (nil, bytes.map { String(format: "%02x", $0) }.joined())
    }
}
