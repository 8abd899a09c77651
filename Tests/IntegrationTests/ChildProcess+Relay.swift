import Foundation
import OutboxTestSupport

extension ChildProcess {
    /// The directory of the built products (the test bundle sits next to the executables).
    static var binDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    static var relayBinary: String { binDirectory.appendingPathComponent("outbox-relay").path }

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
