import Configuration
import Foundation

/// What the command line hands to ``SettingsLoader``: the raw texts, before any layering.
public struct SettingsInput: Sendable {
    /// Settings given as flags, by their `OUTBOX_*` name (`OUTBOX_BATCH_SIZE` for `--batch-size`).
    public var flags: [String: String]
    /// Each `--kafka-property name=value`, in command-line order.
    public var kafkaPropertyFlags: [String]
    /// The process environment; only `OUTBOX_*` names of the catalogue and `OUTBOX_CONFIG` are read.
    public var environment: [String: String]
    /// `--config PATH`; wins over `OUTBOX_CONFIG`.
    public var configPath: String?

    public init(flags: [String: String] = [:], kafkaPropertyFlags: [String] = [], environment: [String: String], configPath: String? = nil) {
        self.flags = flags
        self.kafkaPropertyFlags = kafkaPropertyFlags
        self.environment = environment
        self.configPath = configPath
    }
}

/// Layers flags over the environment over an optional YAML/JSON file with swift-configuration,
/// then hands the winning texts to the pure validation in ``RelaySettings/init(values:defaultRelayID:)``.
///
/// Why keep the flat-map validation underneath: it is the tested core every command already relies
/// on, and it stays independent of where values come from. This layer adds only what layering
/// needs: file keys, per-value provenance for `config check` and for errors, unknown-key
/// detection, and per-property merging of Kafka properties (a file can hold `security.protocol`
/// while the password comes from the environment).
public enum SettingsLoader {
    static let kafkaPropertiesPrefix = "kafka.properties."
    static let kafkaPropertiesName = "OUTBOX_KAFKA_PROPERTIES"

    public static func load(
        _ input: SettingsInput, defaultRelayID: @autoclosure () -> String = RelaySettings.generatedRelayID()
    ) async throws(ConfigurationError) -> EffectiveSettings {
        let catalogue = RelaySettings.defaults
        let scalarSettings = catalogue.filter { $0.name != kafkaPropertiesName }
        let nameByFileKey = Dictionary(uniqueKeysWithValues: catalogue.map { ($0.fileKey, $0.name) })

        // The file, if any.
        var file: ConfigFile?
        if let path = input.configPath.flatMap(nonEmpty) {
            file = try await ConfigFile.load(path: path, origin: SettingOrigin(source: .flag, name: "--config"))
        } else if let path = input.environment["OUTBOX_CONFIG"].flatMap(nonEmpty) {
            file = try await ConfigFile.load(path: path, origin: SettingOrigin(source: .env, name: "OUTBOX_CONFIG"))
        }
        if let file { try checkKeys(file) }

        // Flags: scalar settings plus each --kafka-property as its own key.
        var flagValues: [AbsoluteConfigKey: ConfigValue] = [:]
        for (name, text) in input.flags {
            guard let key = Setting.fileKey(forEnvironmentName: name), name != kafkaPropertiesName else { continue }
            flagValues[AbsoluteConfigKey(ConfigKey(key))] = ConfigValue(.string(text), isSecret: name == "OUTBOX_DATABASE_URL")
        }
        let flagProperties: [String: String]
        do {
            flagProperties = try RelaySettings.parsePropertyFlags(input.kafkaPropertyFlags)
        } catch {
            var error = error
            error.origin = SettingOrigin(source: .flag, name: "--kafka-property")
            throw error
        }
        for (name, value) in flagProperties { flagValues[propertyKey(name)] = propertyValue(name, value) }

        // Environment: the catalogue's names, read by swift-configuration's own provider with the
        // file keys mapped onto them (batch.size → OUTBOX_BATCH_SIZE); Kafka properties split
        // into one key each like the flags'.
        let environment = input.environment.filter { name, _ in scalarSettings.contains { $0.name == name } }
        let environmentProvider = EnvironmentVariablesProvider(environmentVariables: environment)
            .mapKeys { key in
                AbsoluteConfigKey([nameByFileKey[key.components.joined(separator: ".")]?.lowercased() ?? "not_a_setting"])
            }
        let environmentProperties = try properties(
            input.environment[kafkaPropertiesName], origin: SettingOrigin(source: .env, name: kafkaPropertiesName))
        let environmentPropertiesProvider = InMemoryProvider(
            name: ProviderName.environmentProperties,
            values: Dictionary(uniqueKeysWithValues: environmentProperties.map { (propertyKey($0.key), propertyValue($0.key, $0.value)) }))

        var providers: [any ConfigProvider] = [
            InMemoryProvider(name: ProviderName.flags, values: flagValues), environmentProvider, environmentPropertiesProvider,
        ]
        if let provider = file?.provider { providers.append(provider) }
        let recorder = ProvenanceRecorder()
        let reader = ConfigReader(providers: providers, accessReporter: recorder)

        func origin(fileKey: String, name: String, flag: String) -> SettingOrigin {
            switch recorder.source(of: fileKey) ?? .default {
            case .default: SettingOrigin(source: .default, name: fileKey)
            case .file: SettingOrigin(source: .file, name: fileKey, path: file?.path)
            case .env: SettingOrigin(source: .env, name: name)
            case .flag: SettingOrigin(source: .flag, name: flag)
            }
        }

        var values: [String: String] = [:]
        var origins: [String: SettingOrigin] = [:]
        for setting in scalarSettings {
            guard let text = text(reader, ConfigKey(setting.fileKey), isSecret: setting.name == "OUTBOX_DATABASE_URL") else { continue }
            values[setting.name] = text
            origins[setting.name] = origin(fileKey: setting.fileKey, name: setting.name, flag: Setting.flag(forEnvironmentName: setting.name))
        }

        var kafkaProperties: [String: String] = [:]
        var propertyOrigins: [String: SettingOrigin] = [:]
        let fileProperties = (file?.keys ?? []).filter { $0.hasPrefix(kafkaPropertiesPrefix) }.map { String($0.dropFirst(kafkaPropertiesPrefix.count)) }
        for name in Set(fileProperties).union(environmentProperties.keys).union(flagProperties.keys) {
            let fileKey = kafkaPropertiesPrefix + name
            guard let value = text(reader, ConfigKey(propertyKey(name).components), isSecret: KafkaSecretProperties.isSensitive(name)) else { continue }
            kafkaProperties[name] = value
            propertyOrigins[name] = origin(fileKey: fileKey, name: kafkaPropertiesName, flag: "--kafka-property")
        }

        var settings: RelaySettings
        do {
            settings = try RelaySettings(values: values, defaultRelayID: defaultRelayID())
        } catch {
            var error = error
            if error.origin == nil { error.origin = origins[error.setting] }
            throw error
        }
        try KafkaPropertyConflicts.check(kafkaProperties, origins: propertyOrigins)
        settings.kafkaProperties = kafkaProperties
        return EffectiveSettings(
            settings: settings, configFile: file?.path, values: values, origins: origins, propertyOrigins: propertyOrigins)
    }

    /// Rejects keys outside the catalogue, naming the closest known key: a typo in a file must not
    /// silently fall back to a default.
    static func checkKeys(_ file: ConfigFile) throws(ConfigurationError) {
        let known = RelaySettings.defaults.map(\.fileKey).filter { $0 + "." != kafkaPropertiesPrefix }
        for key in file.keys where !known.contains(key) && !key.hasPrefix(kafkaPropertiesPrefix) {
            let problem: String
            if key + "." == kafkaPropertiesPrefix {
                problem = "kafka.properties must be a map of librdkafka property names to values, e.g. properties: {security.protocol: SASL_SSL}"
            } else {
                let hint: String
                if let fromVariable = RelaySettings.defaults.first(where: { $0.name == key.uppercased() }) {
                    hint = "; in a file write \(fromVariable.fileKey) instead of the variable name"
                } else if let closest = ClosestName.suggestion(for: key, among: known) {
                    hint = "; did you mean \(closest)?"
                } else {
                    hint = "; known keys: \(known.joined(separator: ", "))"
                }
                problem = "unknown key\(hint)"
            }
            throw ConfigurationError(setting: "OUTBOX_CONFIG", problem: problem, origin: SettingOrigin(source: .file, name: key, path: file.path))
        }
    }

    /// A value as text, whatever type the provider holds: YAML and JSON files carry numbers,
    /// booleans and lists (`kafka.brokers: [a:9092, b:9092]`), flags and variables carry text.
    static func text(_ reader: ConfigReader, _ key: ConfigKey, isSecret: Bool) -> String? {
        if let text = reader.string(forKey: key, isSecret: isSecret) { return text }
        if let number = reader.int(forKey: key, isSecret: isSecret) { return String(number) }
        if let number = reader.double(forKey: key, isSecret: isSecret) { return String(number) }
        if let flag = reader.bool(forKey: key, isSecret: isSecret) { return String(flag) }
        if let list = reader.stringArray(forKey: key, isSecret: isSecret) { return list.joined(separator: ",") }
        return nil
    }

    static func properties(_ text: String?, origin: SettingOrigin) throws(ConfigurationError) -> [String: String] {
        do {
            return try RelaySettings.parseProperties(text)
        } catch {
            var error = error
            error.origin = origin
            throw error
        }
    }

    static func propertyKey(_ name: String) -> AbsoluteConfigKey {
        AbsoluteConfigKey(["kafka", "properties"] + name.split(separator: ".", omittingEmptySubsequences: false).map(String.init))
    }

    static func propertyValue(_ name: String, _ value: String) -> ConfigValue {
        ConfigValue(.string(value), isSecret: KafkaSecretProperties.isSensitive(name))
    }

    static func nonEmpty(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        return trimmed.isEmpty ? nil : trimmed
    }

    enum ProviderName {
        static let flags = "flags"
        static let environmentProperties = "environment OUTBOX_KAFKA_PROPERTIES"
    }
}
