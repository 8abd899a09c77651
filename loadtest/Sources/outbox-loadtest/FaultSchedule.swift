import ArgumentParser
import Foundation

/// What `chaos` does to the relays and when: `AT:ACTION:RELAY`, e.g. `12s:kill:0`.
///
/// Actions: `kill` (SIGKILL, no chance to settle or release: its lanes wait out the lease),
/// `stop`/`cont` (SIGSTOP/SIGCONT: a frozen relay that comes back after its lease was taken and
/// must not write), `term` (SIGTERM: graceful, lanes handed over at once), `start` (a new process
/// for a relay that is gone).
struct Fault: Sendable, Equatable, ExpressibleByArgument, CustomStringConvertible {
    enum Action: String, Sendable, CaseIterable {
        case kill, stop, cont, term, start
    }

    var at: Duration
    var action: Action
    var relay: Int

    init(at: Duration, action: Action, relay: Int) {
        self.at = at
        self.action = action
        self.relay = relay
    }

    init?(argument: String) {
        let parts = argument.split(separator: ":").map(String.init)
        guard parts.count == 3, let at = Self.seconds(parts[0]), let action = Action(rawValue: parts[1]),
            let relay = Int(parts[2]), relay >= 0
        else { return nil }
        self.init(at: at, action: action, relay: relay)
    }

    var description: String { String(format: "%.1fs:%@:%d", Double(at.components.seconds) + Double(at.components.attoseconds) / 1e18, action.rawValue, relay) }

    static var defaultValueDescription: String { "a default schedule (see --help)" }

    private static func seconds(_ text: String) -> Duration? {
        let number = text.hasSuffix("s") ? String(text.dropLast()) : text
        guard let value = Double(number), value >= 0 else { return nil }
        return .milliseconds(Int64(value * 1000))
    }

    /// Kill one relay and restart it, freeze another past its lease and thaw it, terminate a
    /// third and restart it — spread over the run, leaving time to recover before the end.
    static func defaultSchedule(duration: Duration, relays: Int, leaseTTL: Duration) -> [Fault] {
        let d = duration
        return [
            Fault(at: d * 0.15, action: .kill, relay: 0),
            Fault(at: d * 0.15 + .seconds(2), action: .start, relay: 0),
            Fault(at: d * 0.4, action: .stop, relay: 1 % relays),
            Fault(at: d * 0.4 + leaseTTL + .seconds(2), action: .cont, relay: 1 % relays),
            Fault(at: d * 0.7, action: .term, relay: 2 % relays),
            Fault(at: d * 0.7 + .seconds(2), action: .start, relay: 2 % relays),
        ]
    }
}
