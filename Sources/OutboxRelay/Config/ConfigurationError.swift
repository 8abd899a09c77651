/// A setting that is missing or wrong. The message names the setting (as its environment
/// variable, flag and file key), where the bad value came from when that is known, and says what a
/// valid value looks like; it never echoes a secret.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public var setting: String
    public var problem: String
    /// Where the offending value was given (flag, environment variable or file key); nil when the
    /// error was raised on a plain map of values, or concerns the configuration file itself.
    public var origin: SettingOrigin?

    public init(setting: String, problem: String, origin: SettingOrigin? = nil) {
        self.setting = setting
        self.problem = problem
        self.origin = origin
    }

    public var description: String {
        var names = [Setting.flag(forEnvironmentName: setting)]
        if let key = Setting.fileKey(forEnvironmentName: setting) { names.append("file key \(key)") }
        let from = origin.map { ", from \($0)" } ?? ""
        return "configuration error: \(setting) (\(names.joined(separator: ", ")))\(from): \(problem)"
    }
}

/// Names of settings: the environment variable is canonical, the flag is derived from it, the file
/// key comes from the catalogue in ``RelaySettings/defaults``.
public enum Setting {
    /// `OUTBOX_BATCH_SIZE` → `--batch-size`.
    public static func flag(forEnvironmentName name: String) -> String {
        var stem = name
        if stem.hasPrefix("OUTBOX_") { stem.removeFirst("OUTBOX_".count) }
        if stem == "KAFKA_PROPERTIES" { return "--kafka-property" }
        return "--" + stem.lowercased().replacingOccurrences(of: "_", with: "-")
    }

    /// `OUTBOX_BATCH_SIZE` → `batch.size`; nil for names outside the catalogue (e.g. `OUTBOX_CONFIG`).
    public static func fileKey(forEnvironmentName name: String) -> String? {
        RelaySettings.defaults.first { $0.name == name }?.fileKey
    }
}
