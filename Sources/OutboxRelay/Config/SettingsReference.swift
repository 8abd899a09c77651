/// The reference table of every setting, generated from ``RelaySettings/defaults`` so that the
/// documentation cannot drift from the code: docs/configuration.md embeds this exact text (a test
/// checks it) and `outbox-relay config reference` prints it.
public enum SettingsReference {
    public static func markdownTable() -> String {
        var lines = [
            "| file key | environment variable | flag | default | meaning |",
            "|---|---|---|---|---|",
        ]
        for setting in RelaySettings.defaults {
            // Literal defaults in code style; descriptions such as "(required)" as plain text.
            let literal = !setting.value.isEmpty && !setting.value.hasPrefix("(") && setting.name != "OUTBOX_RELAY_ID"
            let fallback = literal ? "`\(setting.value)`" : setting.value
            let flag = Setting.flag(forEnvironmentName: setting.name)
            let cells = ["`\(setting.fileKey)`", "`\(setting.name)`", "`\(flag)`", fallback, escape(setting.meaning)]
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }

    /// Table cells cannot hold a bare `|`.
    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|")
    }
}
