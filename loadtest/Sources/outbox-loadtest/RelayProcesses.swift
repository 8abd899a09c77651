import Foundation

/// The relays under test, as real `outbox-relay run` processes (their stderr goes to a log file
/// per relay in the results folder).
final class RelayProcesses {
    private(set) var pids: [pid_t] = []

    /// The relay binary next to this one (both are products of the same package).
    static var relayBinary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("outbox-relay").path
    }

    func start(count: Int, arguments: [String], environment: [String: String], logDirectory: URL) throws {
        for index in 0..<count {
            let log = logDirectory.appendingPathComponent("relay-\(index).log").path
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
            let binary = Self.relayBinary
            let argv: [UnsafeMutablePointer<CChar>?] =
                ([binary, "run", "--relay-id", "loadtest-relay-\(index)"] + arguments).map { strdup($0) } + [nil]
            let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer {
                argv.forEach { free($0) }
                envp.forEach { free($0) }
            }
            var pid: pid_t = 0
            let result = posix_spawn(&pid, binary, &actions, nil, argv, envp)
            guard result == 0 else { throw LoadtestError("cannot start \(binary) (errno \(result)); build it: swift build -c release") }
            pids.append(pid)
        }
    }

    /// SIGTERM to all, then waits (a relay flushes, acks and releases its lanes); SIGKILL after `grace`.
    /// Returns the exit codes (nil: had to be killed).
    func stop(grace: Duration = .seconds(30)) async -> [Int32?] {
        for pid in pids { kill(pid, SIGTERM) }
        var codes: [Int32?] = []
        for pid in pids {
            let deadline = ContinuousClock.now + grace
            var status: Int32 = 0
            var code: Int32?
            while ContinuousClock.now < deadline {
                if waitpid(pid, &status, WNOHANG) == pid {
                    code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
                    break
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
            if code == nil {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
            }
            codes.append(code)
        }
        pids = []
        return codes
    }
}

struct LoadtestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
