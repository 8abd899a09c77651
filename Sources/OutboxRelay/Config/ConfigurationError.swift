/// A setting that is missing or wrong. The message names the setting (as its environment
/// variable and flag) and says what a valid value looks like; it never echoes a secret.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public var setting: String
    public var problem: String

    public init(setting: String, problem: String) {
        self.setting = setting
        self.problem = problem
    }

    public var description: String {
        "configuration error: \(setting) (\(Setting.flag(forEnvironmentName: setting))): \(problem)"
    }
}

/// Names of settings: the environment variable is canonical, the flag is derived from it.
public enum Setting {
    /// `OUTBOX_BATCH_SIZE` → `--batch-size`.
    public static func flag(forEnvironmentName name: String) -> String {
        var stem = name
        if stem.hasPrefix("OUTBOX_") { stem.removeFirst("OUTBOX_".count) }
        return "--" + stem.lowercased().replacingOccurrences(of: "_", with: "-")
    }
}
