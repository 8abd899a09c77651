/// Where a setting's effective value came from, in precedence order (a later case wins over an
/// earlier one): what `config check` shows next to each value and what errors name.
public enum SettingSource: String, Sendable, Codable, Comparable, CaseIterable {
    case `default`
    case file
    case env
    case flag

    public static func < (lhs: Self, rhs: Self) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A value's source with the exact name it was given under, so an error can say
/// "from key batch.size in /etc/outbox-relay.yaml" rather than leave the operator to guess which
/// of three places holds the typo.
public struct SettingOrigin: Sendable, Equatable, CustomStringConvertible {
    public var source: SettingSource
    /// The flag (`--batch-size`), environment variable (`OUTBOX_BATCH_SIZE`) or file key (`batch.size`).
    public var name: String
    /// The configuration file, for values from a file.
    public var path: String?

    public init(source: SettingSource, name: String, path: String? = nil) {
        self.source = source
        self.name = name
        self.path = path
    }

    public var description: String {
        switch source {
        case .default: "the default"
        case .file: "key \(name) in \(path ?? "the configuration file")"
        case .env: "environment variable \(name)"
        case .flag: "flag \(name)"
        }
    }
}
