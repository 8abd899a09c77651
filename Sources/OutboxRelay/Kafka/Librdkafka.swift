import CRdKafka

/// The librdkafka library loaded at run time (which may differ from the headers we were built against:
/// Debian ships 2.0.2 headers, while the relay must run with ≥ 2.2 from `.local/lib`).
public enum Librdkafka {
    /// The oldest librdkafka the relay accepts: 2.2.0. Older versions cannot parse the tagged fields in
    /// ApiVersion responses of modern brokers (librdkafka #4278: "ApiVersionRequest failed: Local: Read
    /// underflow"), so they never get connected to Tansu or recent Kafka versions.
    public static let minimumVersion: Int32 = 0x0202_00ff

    /// `rd_kafka_version_str()`, e.g. `2.16.0`.
    public static var versionString: String { String(cString: rd_kafka_version_str()) }

    /// `rd_kafka_version()`: `0xMMmmrrxx` (major, minor, revision, pre-release; `xx == 0xff` for a final release).
    public static var version: Int32 { rd_kafka_version() }

    /// Pure version check, separated out so it can be unit tested without loading another library.
    public static func isSupported(version: Int32) -> Bool {
        version >= minimumVersion
    }

    /// `major.minor.revision` of a `rd_kafka_version()` value, e.g. `0x020002ff` → `2.0.2`.
    public static func describe(version: Int32) -> String {
        let v = UInt32(bitPattern: version)
        return "\(v >> 24).\((v >> 16) & 0xff).\((v >> 8) & 0xff)"
    }

    /// Throws ``KafkaClientError/unsupportedLibrdkafkaVersion(found:required:)`` when the loaded librdkafka is
    /// older than ``minimumVersion``. Called by every client constructor, so a wrong `LD_LIBRARY_PATH` fails at
    /// start-up with the fix in the message instead of as endless connection errors.
    public static func requireSupportedVersion() throws(KafkaClientError) {
        try requireSupported(version: version, versionString: versionString)
    }

    /// The check of ``requireSupportedVersion()`` for a given version, for tests.
    public static func requireSupported(version: Int32, versionString: String? = nil) throws(KafkaClientError) {
        guard isSupported(version: version) else {
            throw .unsupportedLibrdkafkaVersion(
                found: versionString ?? describe(version: version),
                required: describe(version: minimumVersion)
            )
        }
    }
}
