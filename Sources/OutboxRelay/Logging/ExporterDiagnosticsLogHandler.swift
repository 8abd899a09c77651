import Logging

/// The log handler the OTLP exporter's own diagnostics go through: the process's handler, with the
/// values the exporter would otherwise print removed.
///
/// swift-otel logs every `OTEL_*` variable it applies with its raw value (`environment_value`,
/// `previous_value`, `new_value`), at info level by default. `OTEL_EXPORTER_OTLP_HEADERS` is
/// where collector credentials go (`authorization=Bearer …`), so its values become `[redacted]`;
/// a span context it cannot parse is logged with its whole carrier (the relay passes a carrier
/// that describes itself without values, and `carrier` is dropped here too). Everything else
/// passes through, merged the way a handler merges metadata, to the wrapped handler.
public struct ExporterDiagnosticsLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private var base: any LogHandler

    public init(wrapping base: any LogHandler) {
        // The provider's metadata is merged here, once, and redacted with the rest: left on the
        // wrapped handler it would be merged again after the redaction.
        self.metadataProvider = base.metadataProvider
        self.base = base
        self.base.metadataProvider = nil
    }

    public var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        event.metadata = Self.redacted(mergedMetadata(event))
        base.log(event: event)
    }

    static let valueKeys = ["environment_value", "previous_value", "new_value"]

    /// `metadata` without secrets: the values of a headers variable, any carrier, and any key that
    /// looks like a secret (``KafkaSecretProperties``).
    static func redacted(_ metadata: Logger.Metadata) -> Logger.Metadata {
        var result = metadata
        let variable = metadata["environment_key"].map { "\($0)" } ?? ""
        if variable.uppercased().contains("HEADERS") || KafkaSecretProperties.isSensitive(variable) {
            for key in valueKeys where result[key] != nil { result[key] = "[redacted]" }
        }
        result["carrier"] = nil
        for key in result.keys where KafkaSecretProperties.isSensitive(key) { result[key] = "[redacted]" }
        return result
    }
}
