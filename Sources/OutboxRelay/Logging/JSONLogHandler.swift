import Foundation
import Logging

/// A swift-log handler that writes one JSON object per line: `timestamp` (ISO 8601, UTC,
/// milliseconds), `level`, `label`, `message`, `source` (the emitting module), `file`, `line` and
/// `metadata` (handler, provider and call-site metadata merged, call site winning), for log
/// shippers that should not have to parse text.
///
/// It is deliberately small: the relay needs no new dependency for this. Metadata whose key looks
/// like a secret (`password`, `secret`, ... per ``KafkaSecretProperties``) is written as
/// `[redacted]` as a second line of defence; the relay itself never logs payloads or secrets.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    /// - Parameter write: receives each line including its trailing newline; defaults to stderr.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil, write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = mergedMetadata(event)
        var object: [String: Any] = [
            "timestamp": Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
            "level": event.level.rawValue,
            "label": label,
            "message": "\(event.message)",
            "source": event.source,
            "file": event.file,
            "line": Int(event.line),
        ]
        if let error = event.error { object["error"] = "\(error)" }
        if !merged.isEmpty {
            object["metadata"] = Dictionary(uniqueKeysWithValues: merged.map { key, value in
                (key, KafkaSecretProperties.isSensitive(key) ? "[redacted]" : Self.json(value))
            })
        }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        write(String(decoding: data, as: UTF8.self) + "\n")
    }

    static func json(_ value: Logger.MetadataValue) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(json)
        case .dictionary(let values): Dictionary(uniqueKeysWithValues: values.map { ($0.key, json($0.value)) })
        }
    }

    /// One `write(2)` per line, so lines from concurrent tasks do not interleave.
    public static let standardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data(line.utf8))
    }
}

extension LogHandler {
    /// The handler's, the provider's and the call site's metadata merged, the call site winning
    /// (what swift-log's own handlers print).
    func mergedMetadata(_ event: LogEvent) -> Logger.Metadata {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        return merged
    }
}
