import Foundation

/// The validated settings together with where each value came from: what `config check` prints.
/// Every value shown is redacted where it may hold a secret (the database URL's password, Kafka
/// properties such as `sasl.password`), so the output can be pasted into a ticket.
public struct EffectiveSettings: Sendable {
    public var settings: RelaySettings
    /// The configuration file that was read, if any.
    public var configFile: String?
    /// The winning text of each setting that was given somewhere, by `OUTBOX_*` name.
    public var values: [String: String]
    public var origins: [String: SettingOrigin]
    /// Per librdkafka property name.
    public var propertyOrigins: [String: SettingOrigin]

    /// One line of the `config check` table.
    public struct Row: Sendable, Codable, Equatable {
        public var name: String
        public var flag: String
        public var key: String
        public var value: String
        public var source: SettingSource
    }

    public var rows: [Row] {
        var rows: [Row] = []
        for setting in RelaySettings.defaults {
            let flag = Setting.flag(forEnvironmentName: setting.name)
            if setting.name == SettingsLoader.kafkaPropertiesName {
                for (name, value) in settings.kafkaProperties.sorted(by: { $0.key < $1.key }) {
                    rows.append(Row(
                        name: setting.name, flag: flag, key: SettingsLoader.kafkaPropertiesPrefix + name,
                        value: "\(name)=\(KafkaSecretProperties.redacted(name: name, value: value))",
                        source: propertyOrigins[name]?.source ?? .default))
                }
                continue
            }
            let source = origins[setting.name]?.source ?? .default
            rows.append(Row(name: setting.name, flag: flag, key: setting.fileKey, value: display(setting.name, default: setting.value), source: source))
        }
        return rows
    }

    /// The effective value as text, secrets masked; defaults as the catalogue states them, except
    /// where the effective default depends on other settings.
    private func display(_ name: String, default fallback: String) -> String {
        switch name {
        case "OUTBOX_DATABASE_URL": return settings.database.description
        case "OUTBOX_RELAY_ID": return settings.relay.relayID
        case "OUTBOX_RENEW_INTERVAL" where values[name] == nil:
            let milliseconds = settings.relay.renewInterval.milliseconds
            return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
        case "OUTBOX_KAFKA_BROKERS" where values[name] == nil: return "(not set)"
        default: return values[name] ?? fallback
        }
    }

    /// A plain-text table: setting, value, source, and the flag and file key that set it.
    public func table() -> String {
        let header = Row(name: "SETTING", flag: "FLAG", key: "FILE KEY", value: "VALUE", source: .default)
        let rows = self.rows
        let all = [header] + rows
        let widths = [
            all.map(\.name.count).max() ?? 0, all.map(\.value.count).max() ?? 0, 7, all.map(\.flag.count).max() ?? 0,
        ]
        func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
        var lines = ["configuration file: \(configFile ?? "(none)")"]
        for (index, row) in all.enumerated() {
            let source = index == 0 ? "SOURCE" : row.source.rawValue
            lines.append([pad(row.name, widths[0]), pad(row.value, widths[1]), pad(source, widths[2]), pad(row.flag, widths[3]), row.key]
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
        return lines.joined(separator: "\n")
    }

    /// `{"configFile": …, "settings": [{name, flag, key, value, source}, …]}`, keys sorted.
    public func json() -> String {
        struct Document: Encodable {
            var configFile: String?
            var settings: [Row]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(Document(configFile: configFile, settings: rows))) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
