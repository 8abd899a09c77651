/// How the relay writes its log lines to stderr: `text` for people at a terminal, `json` for log
/// shippers (one object per line, see ``JSONLogHandler``).
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json
}
