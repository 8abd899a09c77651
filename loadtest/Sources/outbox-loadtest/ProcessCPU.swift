import Foundation

/// CPU seconds (user + system) the processes of a run used, read from /proc: the one measure of
/// a fleet's cost that a busy 2-core machine does not distort. Statement times stretch when more
/// processes share the cores than there are cores (a backend waits for a core while it runs);
/// CPU seconds do not, so "does a fourth relay add work per message" is answered here.
///
/// A process's figure covers its whole tree: its own time, the time of children it has reaped
/// (`cutime`/`cstime`: PostgreSQL backends that ended, autovacuum workers) and that of children
/// still running. A child running at the first sample and reaped by the second moves from one
/// term to the other, so the difference between two samples stays right.
enum ProcessCPU {
    struct Stat {
        var pid: pid_t
        var parent: pid_t
        /// utime + stime of the process itself, seconds.
        var own: Double
        /// cutime + cstime: children it has waited for, seconds.
        var reaped: Double
    }

    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// /proc/<pid>/stat, nil if the process is gone. The command name may hold spaces and
    /// parentheses, so the fields are counted from its last ")".
    static func stat(_ pid: pid_t) -> Stat? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // After ")": state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17).
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 14, let parent = Int32(fields[1]), let utime = Double(fields[11]), let stime = Double(fields[12]),
            let cutime = Double(fields[13]), let cstime = Double(fields[14])
        else { return nil }
        return Stat(pid: pid, parent: parent, own: (utime + stime) / ticksPerSecond, reaped: (cutime + cstime) / ticksPerSecond)
    }

    /// Every process this user can see.
    static func all() -> [Stat] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0).flatMap(stat) }
    }

    /// Seconds used by `root` and everything below it (see the type's comment); 0 if it is gone.
    static func treeSeconds(_ root: pid_t, in stats: [Stat]) -> Double {
        let children = Dictionary(grouping: stats, by: \.parent)
        let byPID = Dictionary(stats.map { ($0.pid, $0) }, uniquingKeysWith: { first, _ in first })
        var total = 0.0
        var queue = [root]
        var seen: Set<pid_t> = []
        while let pid = queue.popLast(), seen.insert(pid).inserted {
            guard let stat = byPID[pid] else { continue }
            total += stat.own + stat.reaped
            queue += (children[pid] ?? []).map(\.pid)
        }
        return total
    }

    /// The process listening on TCP `port` on this machine (the broker), from /proc/net/tcp{,6}
    /// and the processes' socket descriptors; nil if none of this user's processes does.
    static func listener(port: Int) -> pid_t? {
        let hexPort = String(format: ":%04X", port)
        var inodes: Set<String> = []
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                // local_address(1) … st(3) … inode(9); 0A is LISTEN.
                guard fields.count > 9, fields[1].hasSuffix(hexPort), fields[3] == "0A" else { continue }
                inodes.insert("socket:[\(fields[9])]")
            }
        }
        guard !inodes.isEmpty else { return nil }
        for stat in all() {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(stat.pid)/fd")) ?? []
            for fd in fds {
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(stat.pid)/fd/\(fd)"),
                    inodes.contains(target)
                {
                    return stat.pid
                }
            }
        }
        return nil
    }
}

/// The process groups of a run and their CPU seconds between two samples.
struct CPUAccount {
    struct Group {
        var name: String
        /// Roots of the group's process trees (re-read at each sample: relays come and go).
        var roots: () -> [pid_t]
        /// Count only the roots' own time (the load test itself, whose children are the relays).
        var ownOnly = false
    }

    let groups: [Group]

    /// Seconds per group right now.
    func sample() -> [Double] {
        let stats = ProcessCPU.all()
        let byPID = Dictionary(stats.map { ($0.pid, $0) }, uniquingKeysWith: { first, _ in first })
        return groups.map { group in
            group.roots().reduce(0) { total, root in
                total + (group.ownOnly ? byPID[root]?.own ?? 0 : ProcessCPU.treeSeconds(root, in: stats))
            }
        }
    }

    /// The figures between `start` and `end` samples for `messages` messages.
    func figures(from start: [Double], to end: [Double], messages: Int) -> [RunReport.ProcessCPUFigure] {
        zip(groups, zip(start, end)).map { group, pair in
            let seconds = max(pair.1 - pair.0, 0)
            return .init(name: group.name, seconds: seconds, perThousandMessages: messages > 0 ? seconds * 1000 / Double(messages) : 0)
        }
    }
}

extension CPUAccount {
    /// Relays, PostgreSQL (the postmaster of the run's database and every backend below it), the
    /// broker (whatever listens on the first broker's port, when it is on this machine) and the
    /// load test. A group that is not on this machine is left out, and said so on stderr.
    static func forRun(relays: RelayProcesses, postmaster: pid_t?, brokers: String) -> CPUAccount {
        var groups = [Group(name: "relays", roots: { relays.pids })]
        if let postmaster {
            groups.append(Group(name: "postgres", roots: { [postmaster] }))
        } else {
            Progress.line("  (PostgreSQL's processes are not on this machine: their CPU is not counted)")
        }
        if let broker = localPort(brokers).flatMap(ProcessCPU.listener(port:)) {
            groups.append(Group(name: "broker", roots: { [broker] }))
        } else {
            Progress.line("  (no process of this user listens on the broker's port: its CPU is not counted)")
        }
        let me = getpid()
        groups.append(Group(name: "load test", roots: { [me] }, ownOnly: true))
        return CPUAccount(groups: groups)
    }

    /// The port of the first `host:port` in a bootstrap list when the host is this machine.
    static func localPort(_ brokers: String) -> Int? {
        guard let first = brokers.split(separator: ",").first, let colon = first.lastIndex(of: ":") else { return nil }
        let host = first[..<colon].trimmingCharacters(in: CharacterSet(charactersIn: "[] "))
        guard ["127.0.0.1", "localhost", "::1", "0.0.0.0"].contains(host) else { return nil }
        return Int(first[first.index(after: colon)...])
    }
}
