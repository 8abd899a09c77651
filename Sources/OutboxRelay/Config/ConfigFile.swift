import Configuration
import Foundation
import Synchronization

/// The optional YAML or JSON configuration file (`--config PATH`, `OUTBOX_CONFIG`), opened as a
/// swift-configuration `FileProvider` and checked for keys the relay does not know.
///
/// swift-configuration answers lookups but cannot list what a file holds, and the relay needs that
/// list twice: to reject typos (`batch.sise`) instead of silently ignoring them, and to find the
/// librdkafka properties under `kafka.properties`, whose names are open-ended. The provider's
/// secrets specifier is consulted once per leaf key while the file is parsed, so it doubles as the
/// key collector (and marks the database URL and secret Kafka properties as secrets for the
/// library's own access logging).
struct ConfigFile: Sendable {
    enum Format: String, Sendable {
        case yaml = "YAML"
        case json = "JSON"

        init?(path: String) {
            switch (path as NSString).pathExtension.lowercased() {
            case "yaml", "yml": self = .yaml
            case "json": self = .json
            default: return nil
            }
        }
    }

    let path: String
    let provider: (any ConfigProvider)?
    /// Every leaf key in the file, dot-separated (`kafka.properties.sasl.password`), sorted.
    let keys: [String]

    /// Opens and parses the file; every failure is one `ConfigurationError` naming the path and
    /// what to do about it.
    static func load(path: String, origin: SettingOrigin) async throws(ConfigurationError) -> ConfigFile {
        func fail(_ problem: String) -> ConfigurationError {
            ConfigurationError(setting: "OUTBOX_CONFIG", problem: "\(path): \(problem)", origin: origin)
        }
        guard let format = Format(path: path) else {
            throw fail("unsupported file type; name the file *.yaml, *.yml or *.json")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw fail("no such file; check the path (relative paths start from \(FileManager.default.currentDirectoryPath))")
        }
        guard !isDirectory.boolValue else { throw fail("is a directory, not a \(format.rawValue) file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw fail("cannot be read (permission denied?); make it readable by this user")
        }
        // An empty file (or, in YAML, one holding only comments, e.g. a template with every line
        // commented out) sets nothing; the parsers would reject it as "not a mapping".
        let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        if lines.allSatisfy({ $0.isEmpty || (format == .yaml && $0.hasPrefix("#")) }) {
            return ConfigFile(path: path, provider: nil, keys: [])
        }
        let collector = KeyCollector()
        let location = ConfigReader(provider: InMemoryProvider(name: "config file location", values: ["filePath": .init(.string(path), isSecret: false)]))
        do {
            let provider: any ConfigProvider
            switch format {
            case .yaml:
                provider = try await FileProvider<YAMLSnapshot>(
                    parsingOptions: .init(secretsSpecifier: .dynamic { key, _ in collector.record(key) }), config: location)
            case .json:
                provider = try await FileProvider<JSONSnapshot>(
                    parsingOptions: .init(secretsSpecifier: .dynamic { key, _ in collector.record(key) }), config: location)
            }
            return ConfigFile(path: path, provider: provider, keys: collector.keys)
        } catch {
            throw fail("not valid \(format.rawValue): \(Self.firstLine(of: error)); a mapping of keys like database.url, kafka.brokers and batch.size is expected (docs/configuration.md)")
        }
    }

    /// Parser errors can quote the offending line, which may hold a password: keep only the
    /// parser's first line (position and problem).
    static func firstLine(of error: any Error) -> String {
        // Foundation's JSON errors keep the useful part ("Unexpected end of file") in the debug description.
        let debugDescription = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
        let text = debugDescription ?? String(describing: error)
        let line = text.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? text
        return String(line.prefix(200))
    }

    /// Whether a file key holds a secret: the database URL (it may carry a password) and Kafka
    /// properties that ``KafkaSecretProperties`` considers sensitive.
    static func isSecret(key: String) -> Bool {
        if key == "database.url" { return true }
        let prefix = SettingsLoader.kafkaPropertiesPrefix
        return key.hasPrefix(prefix) && KafkaSecretProperties.isSensitive(String(key.dropFirst(prefix.count)))
    }
}

/// Collects the keys a file provider parses (see ``ConfigFile``); lives only for one load.
private final class KeyCollector: Sendable {
    private let collected = Mutex<[String]>([])

    func record(_ key: String) -> Bool {
        collected.withLock { $0.append(key) }
        return ConfigFile.isSecret(key: key)
    }

    var keys: [String] { collected.withLock { $0.sorted() } }
}
