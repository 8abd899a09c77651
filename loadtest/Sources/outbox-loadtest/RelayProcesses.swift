import Foundation
import OutboxTestSupport

/// The relays under test, as real `outbox-relay run` processes, each with its stderr in a log file
/// of the results folder and its /metrics on a port of its own (`httpPortBase + index`).
///
/// Relays are addressed by index so the chaos schedule can kill, stop, continue and restart one;
/// a restarted relay keeps its name and port and appends to its log.
final class RelayProcesses {
    private var processes: [Int: ChildProcess] = [:]
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

    var pids: [pid_t] { processes.keys.sorted().compactMap { processes[$0]?.pid } }

    func port(_ index: Int) -> Int? { httpPortBase > 0 ? httpPortBase + index : nil }

    /// Each relay's `outbox_relay_published_total` from its /metrics, by index (nil: no answer, or
    /// no endpoints): how each relay's share is measured without trusting anything but the relay.
    func publishedTotals() -> [Double?] {
        (0..<count).map { index in
            port(index).flatMap { Self.metric("outbox_relay_published_total", port: $0) }
        }
    }

    func startAll() throws {
        for index in 0..<count { try start(index) }
    }

    func start(_ index: Int) throws {
        let log = logDirectory.appendingPathComponent("relay-\(index).log").path
        let http = port(index).map { "127.0.0.1:\($0)" } ?? "off"
        do {
            processes[index] = try ChildProcess(
                Self.relayBinary, ["run", "--relay-id", Self.name(index), "--http-address", http] + arguments,
                environment: environment, log: log)
        } catch {
            throw LoadtestError("\(error); build it: swift build -c release")
        }
    }

    /// The value of an unlabelled metric at 127.0.0.1:`port`/metrics, nil when the relay does not
    /// answer within 200 ms (polled about once a second per relay).
    static func metric(_ name: String, port: Int) -> Double? {
        guard let response = try? HTTPGet.get(port: port, path: "/metrics", timeout: .milliseconds(200)), response.status == 200
        else { return nil }
        return HTTPGet.sample(name, in: response.body)
    }

    /// Sends `signal` to relay `index`; after SIGKILL the process is reaped and forgotten.
    func signal(_ index: Int, _ signal: Int32) {
        guard let process = processes[index] else { return }
        if signal == SIGKILL {
            process.kill()
            processes[index] = nil
            exitCodes[index] = .some(nil)
        } else {
            process.signal(signal)
        }
    }

    /// Whether relay `index` has a process that has not exited (an exited one is reaped).
    func isRunning(_ index: Int) -> Bool {
        guard let process = processes[index] else { return false }
        guard let code = process.exitCodeIfExited() else { return true }
        processes[index] = nil
        exitCodes[index] = code
        return false
    }

    /// SIGTERM to relay `index` and waits for it (a relay settles its batch and releases its lanes).
    func terminate(_ index: Int, grace: Duration = .seconds(30)) async -> Int32? {
        guard let process = processes[index] else { return nil }
        process.signal(SIGCONT)  // a stopped relay cannot handle SIGTERM
        process.signal(SIGTERM)
        let code = await process.wait(timeout: grace)
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
        processes.values.map(\.residentKilobytes).max() ?? 0
    }
}
