import Foundation

/// The relays under test, as real `outbox-relay run` processes, each with its stderr in a log file
/// of the results folder and its /metrics on a port of its own (`httpPortBase + index`).
///
/// Relays are addressed by index so the chaos schedule can kill, stop, continue and restart one;
/// a restarted relay keeps its name and port and appends to its log.
final class RelayProcesses {
    private var processes: [Int: pid_t] = [:]
    private var exitCodes: [Int: Int32?] = [:]
    let count: Int
    let arguments: [String]
    let environment: [String: String]
    let logDirectory: URL
    /// 0: no HTTP endpoints (`--http-address off`).
    let httpPortBase: Int

    init(count: Int, arguments: [String], environment: [String: String], logDirectory: URL, httpPortBase: Int) {
        self.count = count
        self.arguments = arguments
        self.environment = environment
        self.logDirectory = logDirectory
        self.httpPortBase = httpPortBase
    }

    /// The relay binary next to this one (both are products of the same package).
    static var relayBinary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("outbox-relay").path
    }

    static func name(_ index: Int) -> String { "loadtest-relay-\(index)" }

    var pids: [pid_t] { processes.keys.sorted().compactMap { processes[$0] } }

    func port(_ index: Int) -> Int? { httpPortBase > 0 ? httpPortBase + index : nil }

    /// Each relay's `outbox_relay_published_total` from its /metrics, by index (nil: no answer, or
    /// no endpoints): how each relay's share is measured without trusting anything but the relay.
    func publishedTotals() -> [Double?] {
        (0..<count).map { index in
            port(index).flatMap { MetricsScraper.value(of: "outbox_relay_published_total", port: $0) }
        }
    }

    func startAll() throws {
        for index in 0..<count { try start(index) }
    }

    func start(_ index: Int) throws {
        let log = logDirectory.appendingPathComponent("relay-\(index).log").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let binary = Self.relayBinary
        let http = port(index).map { "127.0.0.1:\($0)" } ?? "off"
        let argv: [UnsafeMutablePointer<CChar>?] =
            ([binary, "run", "--relay-id", Self.name(index), "--http-address", http] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, binary, &actions, nil, argv, envp)
        guard result == 0 else { throw LoadtestError("cannot start \(binary) (errno \(result)); build it: swift build -c release") }
        processes[index] = pid
    }

    /// Sends `signal` to relay `index`; after SIGKILL the process is reaped and forgotten.
    func signal(_ index: Int, _ signal: Int32) {
        guard let pid = processes[index] else { return }
        kill(pid, signal)
        if signal == SIGKILL {
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
            processes[index] = nil
            exitCodes[index] = .some(nil)
        }
    }

    /// Whether relay `index` has a process that has not exited (an exited one is reaped).
    func isRunning(_ index: Int) -> Bool {
        guard let pid = processes[index] else { return false }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return true }
        processes[index] = nil
        exitCodes[index] = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return false
    }

    /// SIGTERM to relay `index` and waits for it (a relay settles its batch and releases its lanes).
    func terminate(_ index: Int, grace: Duration = .seconds(30)) async -> Int32? {
        guard let pid = processes[index] else { return nil }
        kill(pid, SIGCONT)  // a stopped relay cannot handle SIGTERM
        kill(pid, SIGTERM)
        let code = await Self.wait(pid, grace: grace)
        processes[index] = nil
        exitCodes[index] = code
        return code
    }

    /// SIGTERM to all and waits; returns every relay's last exit code (nil: had to be killed).
    func stop(grace: Duration = .seconds(30)) async -> [Int32?] {
        for index in processes.keys.sorted() { _ = await terminate(index, grace: grace) }
        return (0..<count).map { exitCodes[$0] ?? nil }
    }

    /// Peak of the relays' resident memory right now (VmRSS, KiB).
    func residentKilobytes() -> Int {
        pids.map(Self.residentKilobytes).max() ?? 0
    }

    private static func wait(_ pid: pid_t, grace: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + grace
        var status: Int32 = 0
        while ContinuousClock.now < deadline {
            if waitpid(pid, &status, WNOHANG) == pid {
                return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        kill(pid, SIGKILL)
        _ = waitpid(pid, &status, 0)
        return nil
    }

    static func residentKilobytes(_ pid: pid_t) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }
}
