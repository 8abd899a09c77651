import Foundation
@_spi(Benchmark) import OutboxRelay

/// Everything one run measured, in one Codable value: report.json is this, report.md and
/// report.html are views of it. Sections a mode does not measure stay nil or empty.
struct RunReport: Codable {
    var mode: String
    var command: String
    var machine: String
    var startedAt: Date
    var parameters: Parameters
    var ceiling: CeilingFigures?
    var drain: DrainFigures?
    var steady: SteadyFigures?
    var relayPeakRSSMiB: Double?
    var relayExitCodes: [Int32?] = []
    var ledger: LedgerCheck?
    /// One sample per interval (0.5 s in drain, 1 s otherwise) from the start of the measured phase.
    var timeline: [TimelineSample] = []
    /// `outbox_relay_published_total` of each relay over time, scraped from its /metrics.
    var relayShares: [RelayShare] = []
    var faults: [FaultEvent] = []
    var targets: [TargetCheck] = []
    /// The relay's statements by database time (pg_stat_statements), when available.
    var databaseStatements: [StatementStat] = []
    /// CPU seconds of each process group over the measured phase (relays, PostgreSQL, broker, the
    /// load test itself), from /proc; empty where a group could not be found.
    var processCPU: [ProcessCPUFigure] = []

    struct Parameters: Codable {
        var messages: Int?
        var rate: Int?
        var durationSeconds: Double?
        var relays: Int
        var payloadBytes: Int
        var keys: Int
        var batchSize: Int
        var schema: String
        var topic: String
        /// What the database was put through besides the load (`--hold-xmin`, `--dead-rows`).
        var conditions: String?
    }

    struct CeilingFigures: Codable {
        var messages: Int
        /// The relay's read + fenced delete statements in a loop, no broker.
        var database: CeilingProbes.Result
        /// The relay's envelope builder and producer, one batch at a time (as a relay sends).
        var produceOneBatch: CeilingProbes.Result
        /// The same with several batches in flight: what the broker and librdkafka can take.
        var produceStreaming: CeilingProbes.Result
        var produceInFlight: Int
        /// The machine's limit for a relay: min(database, produce streaming).
        var limit: Double { min(database.rate, produceStreaming.rate) }
    }

    struct DrainFigures: Codable {
        var seedSeconds: Double
        var seedRate: Double
        /// From starting the relays to an empty outbox (process start and producer set-up included).
        var drainSeconds: Double
        var throughput: Double
        var firstPublishSeconds: Double
        /// Messages published after the first acknowledged batch ÷ the time from it to empty.
        var steadyThroughput: Double
    }

    struct SteadyFigures: Codable {
        var enqueued: Int
        var achievedRate: Double
        /// Latest an enqueue transaction committed after its scheduled time (the generator's own lag).
        var maxScheduleLagMilliseconds: Double
        var latency: LatencySummary
        /// Percentile → milliseconds, for the percentile curve.
        var percentileCurve: [PercentilePoint]
        /// Commit → the relay's produce call (the record's CreateTime; wall clock, 1 ms resolution).
        var commitToProduce: LatencySummary?
        /// The record's CreateTime → the consumer: the broker's and the consumer's share.
        var produceToConsume: LatencySummary?
        /// The same producer and consumer at the same rate without database or relay: the floor.
        var brokerFloor: LatencySummary?
        /// Most messages committed and not yet published (or, without the relays' counters, not yet
        /// consumed) at a once-a-second sample.
        var maxBacklog: Int? = nil
    }

    struct LatencySummary: Codable {
        var count: Int
        var p50: Double
        var p90: Double
        var p99: Double
        var p999: Double
        var max: Double
        var mean: Double
    }

    struct PercentilePoint: Codable {
        var percentile: Double
        var milliseconds: Double
    }

    struct TimelineSample: Codable {
        var seconds: Double
        /// Messages per second leaving the outbox (drain) or reaching the consumer (steady, chaos).
        var publishedPerSecond: Double
        var enqueuedPerSecond: Double?
        var pending: Int?
        var p50Milliseconds: Double?
        var p99Milliseconds: Double?
        var maxMilliseconds: Double?
    }

    struct RelayShare: Codable {
        var relay: String
        var samples: [Point]
        struct Point: Codable {
            var seconds: Double
            var published: Double
        }
    }

    struct FaultEvent: Codable {
        var seconds: Double
        var action: String
        var relay: Int
    }

    struct StatementStat: Codable {
        var statement: String
        var calls: Int
        var totalMilliseconds: Double
        var meanMilliseconds: Double
        var rows: Int
        /// Shared buffers hit or read: the work a statement did, independent of the machine's speed.
        var buffers: Int?

        /// Execution time and buffers per 1,000 rows returned or changed (nil without rows).
        var perThousandRows: (milliseconds: Double, buffers: Double?)? {
            guard rows > 0 else { return nil }
            return (totalMilliseconds * 1000 / Double(rows), buffers.map { Double($0) * 1000 / Double(rows) })
        }
    }

    struct ProcessCPUFigure: Codable {
        var name: String
        var seconds: Double
        var perThousandMessages: Double
    }

    struct TargetCheck: Codable {
        var name: String
        var target: String
        var measured: String
        var met: Bool
    }

    // MARK: Markdown

    var markdown: String {
        var lines = ["## outbox-loadtest \(mode)", "", "`\(command)`", "", "| | |", "|---|---|"]
        func row(_ name: String, _ value: String) { lines.append("| \(name) | \(value) |") }
        let p = parameters
        if let messages = p.messages { row("messages", "\(messages) × \(p.payloadBytes) B, \(p.keys) keys, batch \(p.batchSize)") }
        if let rate = p.rate, let duration = p.durationSeconds {
            row("load", "\(rate) msg/s for \(Self.number(duration, "%.0f")) s, \(p.payloadBytes) B, \(p.keys) keys, batch \(p.batchSize)")
        }
        if mode != "ceiling" { row("relays", "\(p.relays)") }
        if let conditions = p.conditions { row("conditions", conditions) }
        if let c = ceiling {
            row("database ceiling", "\(Self.rate(c.database.rate)) (relay read + fenced delete, no broker, \(c.database.messages) msgs)")
            row("produce ceiling", "\(Self.rate(c.produceStreaming.rate)) with \(c.produceInFlight) batches in flight; \(Self.rate(c.produceOneBatch.rate)) one batch at a time (no database)")
            row("machine limit", "\(Self.rate(c.limit)) = min(database, produce)")
        }
        if let d = drain {
            row("seed (COPY)", String(format: "%.2f s (%@)", d.seedSeconds, Self.rate(d.seedRate)))
            var drainText = String(format: "%.2f s → **%@**", d.drainSeconds, Self.rate(d.throughput))
            if let c = ceiling { drainText += String(format: " = **%.0f %%** of the machine limit", 100 * d.throughput / c.limit) }
            row("drain (relay start → empty)", drainText)
            var steadyText = Self.rate(d.steadyThroughput)
            if let c = ceiling { steadyText += String(format: " = %.0f %% of the limit", 100 * d.steadyThroughput / c.limit) }
            row(String(format: "after the first ack (%.2f s)", d.firstPublishSeconds), steadyText)
        }
        if let s = steady {
            row("enqueued", "\(s.enqueued) in real transactions (\(Self.rate(s.achievedRate)) achieved; generator lag ≤ \(Self.number(s.maxScheduleLagMilliseconds, "%.1f")) ms)")
            let l = s.latency
            row("commit → consume", String(format: "p50 **%.1f ms**, p90 %.1f ms, p99 **%.1f ms**, p99.9 %.1f ms, max %.1f ms (n = %d)", l.p50, l.p90, l.p99, l.p999, l.max, l.count))
            if let f = s.brokerFloor {
                row("broker floor (no database, no relay)", String(format: "produce → consume p50 %.1f ms, p99 %.1f ms at the same rate with the relay's producer and the same consumer", f.p50, f.p99))
            }
            if let a = s.commitToProduce, let b = s.produceToConsume {
                row("split at the broker", String(format: "commit → produce p50 %.0f ms, p99 %.0f ms; produce → consume p50 %.0f ms, p99 %.0f ms (record CreateTime, 1 ms resolution)", a.p50, a.p99, b.p50, b.p99))
            }
            if let backlog = s.maxBacklog { row("backlog", "at most \(backlog) messages committed and not yet published (sampled once a second)") }
        }
        if !processCPU.isEmpty {
            let total = processCPU.reduce(0) { $0 + $1.perThousandMessages }
            row(
                "CPU seconds per 1,000 messages",
                processCPU.map { String(format: "%@ %.3f", $0.name, $0.perThousandMessages) }.joined(separator: ", ")
                    + String(format: "; **total %.3f** (/proc, user + system)", total))
        }
        if let rss = relayPeakRSSMiB { row("relay peak RSS", String(format: "%.1f MiB", rss)) }
        if !relayExitCodes.isEmpty {
            row("relay exit codes", relayExitCodes.map { $0.map(String.init) ?? "killed" }.joined(separator: ", "))
        }
        if !faults.isEmpty {
            row("faults", faults.map { String(format: "%.1fs %@ relay-%d", $0.seconds, $0.action, $0.relay) }.joined(separator: "; "))
        }
        if let ledger {
            row("ledger", "expected \(ledger.expected), consumed \(ledger.consumed), unique \(ledger.unique), **lost \(ledger.lost)**, duplicates \(ledger.duplicates), **order violations \(ledger.orderViolations)**, dead-lettered \(ledger.deadLettered)")
        }
        row("machine", machine)
        if !targets.isEmpty {
            lines += ["", "| target | wanted | measured | met |", "|---|---|---|---|"]
            for t in targets { lines.append("| \(t.name) | \(t.target) | \(t.measured) | \(t.met ? "yes" : "**no**") |") }
        }
        if !databaseStatements.isEmpty {
            lines += [
                "", "Database time by statement (pg_stat_statements):", "",
                "| calls | total ms | mean ms | rows | ms / 1,000 rows | buffers / 1,000 rows | statement |", "|---|---|---|---|---|---|---|",
            ]
            for s in databaseStatements {
                let per = s.perThousandRows
                lines.append(String(
                    format: "| %d | %.0f | %.2f | %d | %@ | %@ | `%@` |", s.calls, s.totalMilliseconds, s.meanMilliseconds, s.rows,
                    per.map { String(format: "%.2f", $0.milliseconds) } ?? "–", per?.buffers.map { String(format: "%.0f", $0) } ?? "–",
                    String(s.statement.prefix(90))))
            }
        }
        lines.append("")
        return lines.joined(separator: "\n")
    }

    static func rate(_ value: Double) -> String {
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.maximumFractionDigits = 0
        return (formatter.string(from: NSNumber(value: value)) ?? String(format: "%.0f", value)) + " msg/s"
    }

    static func number(_ value: Double, _ format: String) -> String { String(format: format, value) }
}

extension RunReport.LatencySummary {
    /// Exact percentiles of a small sample set (milliseconds); nil when empty.
    init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        func at(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
        self.init(
            count: sorted.count, p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: sorted.last!,
            mean: sorted.reduce(0, +) / Double(sorted.count))
    }
}
