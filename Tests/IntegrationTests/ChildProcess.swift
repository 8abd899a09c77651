import Foundation

/// A child process for tests that run the real `outbox-relay` binary: spawned with posix_spawn
/// (stdout and stderr to temporary files), signalled with kill, reaped with waitpid. Foundation's
/// `Process` was seen to hang in `waitUntilExit` here, so the tests use the system calls directly.
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    private let stdoutPath: String
    private let stderrPath: String

    /// The directory of the built products (the test bundle sits next to the executables).
    static var binDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    static var relayBinary: String { binDirectory.appendingPathComponent("outbox-relay").path }

    init(_ executable: String, _ arguments: [String], environment: [String: String]) throws {
        let id = UUID().uuidString
        stdoutPath = NSTemporaryDirectory() + "child-\(id).out"
        stderrPath = NSTemporaryDirectory() + "child-\(id).err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
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

    struct SpawnError: Error { var message: String }

    func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Waits for the exit (polling, so a hung child cannot hang the test) and returns its exit code,
    /// or nil when it did not exit within `timeout` (it is then killed).
    func wait(timeout: Duration = .seconds(60)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        while ContinuousClock.now < deadline {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid {
                // WIFEXITED / WEXITSTATUS, spelled out (C macros are not imported).
                return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        kill(pid, SIGKILL)
        _ = waitpid(pid, &status, 0)
        return nil
    }

    var standardOutput: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var standardError: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Runs the relay binary to completion and returns (exit code, stdout, stderr).
    static func runRelay(_ arguments: [String], environment: [String: String], timeout: Duration = .seconds(60)) async throws
        -> (code: Int32?, stdout: String, stderr: String)
    {
        let child = try ChildProcess(relayBinary, arguments, environment: environment)
        let code = await child.wait(timeout: timeout)
        return (code, child.standardOutput, child.standardError)
    }

    /// The test process's environment without the OUTBOX_* settings, plus `settings`.
    static func environment(_ settings: [String: String]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OUTBOX_") }
        environment.merge(settings) { $1 }
        return environment
    }
}
