import Foundation

/// A child process — the real `outbox-relay` binary, as the integration tests and the load test
/// run it: spawned with posix_spawn, signalled with kill, reaped with waitpid. Foundation's
/// `Process` was seen to hang in `waitUntilExit` here once a script had left a daemon behind, so
/// both use the system calls directly.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private let stdoutPath: String
    private let stderrPath: String

    /// Standard output and standard error each to a temporary file of their own.
    public convenience init(_ executable: String, _ arguments: [String], environment: [String: String]) throws {
        let id = UUID().uuidString
        try self.init(
            executable, arguments, environment: environment, stdout: NSTemporaryDirectory() + "child-\(id).out",
            stderr: NSTemporaryDirectory() + "child-\(id).err", append: false)
    }

    /// Standard output and standard error both appended to `log` (a restarted process keeps its log).
    public convenience init(_ executable: String, _ arguments: [String], environment: [String: String], log: String) throws {
        try self.init(executable, arguments, environment: environment, stdout: log, stderr: nil, append: true)
    }

    private init(
        _ executable: String, _ arguments: [String], environment: [String: String], stdout: String, stderr: String?, append: Bool
    ) throws {
        stdoutPath = stdout
        stderrPath = stderr ?? stdout
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, flags, 0o644)
        if let stderr {
            posix_spawn_file_actions_addopen(&actions, 2, stderr, flags, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard result == 0 else { throw SpawnError(message: "cannot start \(executable): errno \(result)") }
        self.pid = pid
    }

    public struct SpawnError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public func signal(_ signal: Int32) {
        Foundation.kill(pid, signal)
    }

    /// Waits for the exit (polling, so a hung child cannot hang the caller) and returns its exit
    /// code (128 + the signal when a signal ended it), or nil when it did not exit within
    /// `timeout` (it is then killed and reaped).
    public func wait(timeout: Duration = .seconds(60)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let code = exitCodeIfExited() { return code }
            try? await Task.sleep(for: .milliseconds(20))
        }
        kill()
        return nil
    }

    /// The exit code if the process has exited (reaping it), nil while it runs. Call it until it
    /// answers once: after that the pid is no longer ours.
    public func exitCodeIfExited() -> Int32? {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        // WIFEXITED / WEXITSTATUS, spelled out (C macros are not imported).
        return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }

    /// SIGKILL, then reaps the process at once.
    public func kill() {
        Foundation.kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    public var standardOutput: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var standardError: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Resident memory right now (VmRSS, KiB; 0 when gone).
    public var residentKilobytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }
}
