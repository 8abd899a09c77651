import Foundation
import Histogram
import Logging
import Outbox
@_spi(Benchmark) import OutboxRelay
import PostgresNIO
import Synchronization

/// `steady` and `chaos`: messages enqueued at a fixed rate in real transactions through the public
/// API (`OutboxWriter`), relays publishing them, a consumer following the topic, and the time from
/// each COMMIT to the consumer seeing the record. `chaos` adds faults on a schedule.
struct SteadyRun {
    var mode: String
    var rate: Int
    var duration: Duration
    var relays: Int
    var payloadBytes: Int
    var keys: Int
    var batchSize: Int
    var writers: Int
    /// BEGIN … COMMIT around each enqueue (three round trips), or the enqueue statement as its own
    /// transaction (committed when it returns; one round trip, a third of the generator's CPU).
    var explicitTransactions: Bool
    var relayArguments: [String]
    var faults: [Fault]
    var httpPortBase: Int
    /// How long to wait after the last commit for the consumer to see everything.
    var settleTimeout: Duration

    /// Seconds of the broker-floor probe before the run (0: none; nil: as long as the run, since
    /// some brokers — Tansu's memory engine — slow down as a partition grows).
    var brokerFloorSeconds: Int? = nil
    /// Hold the xmin horizon for the whole run (``HeldHorizon``).
    var holdXmin = false

    func run(context: LoadtestContext) async throws -> RunReport {
        let started = Date()
        var floor: RunReport.LatencySummary?
        let floorSeconds = brokerFloorSeconds ?? Int(duration.seconds.rounded(.up))
        if floorSeconds > 0 {
            Progress.line("broker floor: \(rate) msg/s for \(floorSeconds) s straight to the broker (no database, no relay)…")
            floor = try await BrokerFloor(context: context, rate: rate, duration: .seconds(floorSeconds)).measure()
            if let floor { Progress.line(String(format: "broker floor: p50 %.1f ms, p99 %.1f ms", floor.p50, floor.p99)) }
        }
        var report = try await runWithRelays(context: context, started: started)
        report.steady?.brokerFloor = floor
        return report
    }

    private func runWithRelays(context: LoadtestContext, started: Date) async throws -> RunReport {
        let topic = "loadtest-\(mode)-\(context.stamp)"
        let logger = context.logger
        return try await context.withDatabase { client in
            try await HeldHorizon.around(holdXmin ? client : nil, logger: logger) {
                try await startRelaysAndMeasure(context: context, client: client, topic: topic, started: started)
            }
        }
    }

    private func startRelaysAndMeasure(context: LoadtestContext, client: PostgresClient, topic: String, started: Date) async throws -> RunReport {
        let logger = context.logger
        let writer = OutboxWriter(schema: context.schema)
        let processes = RelayProcesses(
            count: relays, arguments: ["--batch-size", "\(batchSize)"] + relayArguments,
            environment: context.relayEnvironment(), logDirectory: context.directory, httpPortBase: httpPortBase)
        Progress.line("starting \(relays) relay(s): \(RelayProcesses.relayBinary)")
        try processes.startAll()
        do {
            let report = try await measure(
                context: context, client: client, writer: writer, processes: processes, topic: topic, started: started,
                logger: logger)
            return report
        } catch {
            _ = await processes.stop(grace: .seconds(5))
            throw error
        }
    }

    private func measure(
        context: LoadtestContext, client: PostgresClient, writer: OutboxWriter, processes: RelayProcesses, topic: String,
        started: Date, logger: Logger
    ) async throws -> RunReport {
        // Warm-up: one message through the whole path creates the topic and proves the relays run.
        Progress.line("warm-up: one message through the relays…")
        let warmUp = try await client.withTransaction(logger: logger) { connection in
            try await writer.enqueue(OutboxMessage(topic: topic, key: "warm-up", payload: Array("warm-up".utf8)), on: connection, logger: logger)
        }
        let warmDeadline = ContinuousClock.now + .seconds(60)
        while try await client.scalar("SELECT count(*) FROM \(context.schema.rawValue).messages", logger: logger) > 0 {
            guard ContinuousClock.now < warmDeadline else { throw LoadtestError("the warm-up message was not published within 60 s (relay logs in \(context.directory.path))") }
            try await Task.sleep(for: .milliseconds(50))
        }

        let commits = CommitLog()
        let arrivals = ArrivalLog()
        let total = Int((duration.seconds * Double(rate)).rounded())
        let brokers = context.brokers
        let properties = context.settings.kafkaProperties
        // CPU from the start of the load to the last arrival (a relay killed by a fault takes its
        // seconds with it: chaos figures are a lower bound).
        let cpu = CPUAccount.forRun(relays: processes, postmaster: try await context.localPostmaster(client), brokers: brokers)
        let cpuAtStart = cpu.sample()

        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await KafkaTopicReader.follow(
                    topic: topic, bootstrapServers: brokers, properties: properties, waitForTopic: .seconds(30), logger: logger,
                    shouldStop: { arrivals.shouldStop }, onRecord: { arrivals.arrived($0) })
            }
            defer { arrivals.stop() }
            let consumerDeadline = ContinuousClock.now + .seconds(30)
            while !arrivals.hasArrived(warmUp) {
                guard ContinuousClock.now < consumerDeadline else { throw LoadtestError("the consumer did not see the warm-up message within 30 s") }
                try await Task.sleep(for: .milliseconds(20))
            }

            Progress.line("\(mode): \(rate) msg/s for \(duration) through \(writers) writer connections, \(relays) relay(s)…")
            let t0 = ContinuousClock.now + .milliseconds(100)
            let (writers, rate, keys, payloadBytes) = (self.writers, self.rate, self.keys, self.payloadBytes)
            let explicitTransactions = self.explicitTransactions
            let keysPerWriter = max(1, keys / writers)
            let payload = [UInt8](repeating: 0xAB, count: payloadBytes)
            let writersDone = DoneCounter()
            for w in 0..<writers {
                group.addTask {
                    // Each key belongs to one writer, so a key's messages commit one after the other
                    // (concurrent writers of one key could commit out of id order, which is the
                    // application's race, not the relay's).
                    defer { writersDone.increment() }
                    // One connection per writer for the whole run, as an application's request
                    // handler would hold one: the pool's lease per transaction is not the point here.
                    try await client.withConnection { connection in
                        var i = w
                        while i < total {
                            let due = t0 + .microseconds(Int64(Double(i) * 1_000_000 / Double(rate)))
                            try await Task.sleep(until: due, clock: .continuous)
                            let key = "key-\(w + writers * ((i / writers) % keysPerWriter))"
                            let message = OutboxMessage(topic: topic, key: key, payload: payload)
                            let id =
                                explicitTransactions
                                ? try await connection.withTransaction(logger: logger) { connection in
                                    try await writer.enqueue(message, on: connection, logger: logger)
                                }
                                : try await writer.enqueue(message, on: connection, logger: logger)
                            let committed = ContinuousClock.now
                            commits.record(id: id, at: committed, lag: committed - due)
                            i += writers
                        }
                    }
                }
            }

            // The monitor: faults on schedule, per-relay scrapes, progress, until every committed
            // message arrived (or was dead-lettered) after the writers finished.
            var pending = faults.sorted { $0.at < $1.at }
            var events: [RunReport.FaultEvent] = []
            var shares = (0..<relays).map { RunReport.RelayShare(relay: RelayProcesses.name($0), samples: []) }
            var peakRSS = 0
            var lastScrape = ContinuousClock.now - .seconds(1)
            var lastPrint = ContinuousClock.now
            var settleDeadline: ContinuousClock.Instant?
            // Committed and not yet published (the relays' own counters, when scraped; else not yet
            // consumed), once a second: a backlog that grows shows the relays falling behind.
            // Counted here rather than in the outbox, whose count(*) would walk every dead row a
            // held horizon keeps.
            var backlog: [Int: Int] = [:]
            while true {
                try await Task.sleep(for: .milliseconds(50))
                let now = ContinuousClock.now
                let elapsed = (now - t0).seconds
                while let next = pending.first, now >= t0 + next.at {
                    pending.removeFirst()
                    try await apply(next, to: processes)
                    events.append(.init(seconds: elapsed, action: next.action.rawValue, relay: next.relay))
                    Progress.line(String(format: "  %6.1fs  fault: %@ relay-%d", elapsed, next.action.rawValue, next.relay))
                }
                peakRSS = max(peakRSS, processes.residentKilobytes())
                if now - lastScrape >= .seconds(1) {
                    lastScrape = now
                    for (index, total) in processes.publishedTotals().enumerated() {
                        // A relay that does not answer (killed, frozen) published nothing since the last sample.
                        guard let value = total ?? shares[index].samples.last?.published else { continue }
                        shares[index].samples.append(.init(seconds: elapsed, published: value))
                    }
                }
                if now - lastPrint >= .seconds(1) {
                    lastPrint = now
                    // The warm-up message counts among the published ones; a relay killed by a fault
                    // takes its count with it, so chaos falls back to the consumer's view.
                    let published = shares.reduce(0) { $0 + ($1.samples.last?.published ?? 0) }
                    let left = httpPortBase > 0 && faults.isEmpty ? Int(published) : arrivals.uniqueCount
                    backlog[Int(elapsed.rounded(.down))] = max(commits.count - (left - 1), 0)
                    Progress.line(String(format: "  %6.1fs  committed %d / %d, consumed %d", elapsed, commits.count, total, arrivals.uniqueCount - 1))
                }
                guard writersDone.value == writers, pending.isEmpty else { continue }
                if settleDeadline == nil { settleDeadline = now + settleTimeout }
                if arrivals.uniqueCount - 1 >= total { break }
                if now > settleDeadline! {
                    // Latency is then missing for what the follower did not see; the ledger reads
                    // the topic from the start anyway.
                    Progress.line("  gave up waiting for the consumer after \(settleTimeout); checking the ledger")
                    break
                }
            }
            arrivals.stop()
            let processCPU = cpu.figures(from: cpuAtStart, to: cpu.sample(), messages: commits.count)
            try await group.waitForAll()  // a writer or the consumer that failed surfaces here
            let exitCodes = await processes.stop()
            var report = try await report(
                context: context, client: client, topic: topic, started: started, t0: t0, commits: commits, arrivals: arrivals,
                total: total, warmUp: warmUp, events: events, shares: shares, peakRSS: peakRSS, exitCodes: exitCodes,
                backlog: backlog)
            report.processCPU = processCPU
            return report
        }
    }

    private func apply(_ fault: Fault, to processes: RelayProcesses) async throws {
        guard fault.relay < relays else { return }
        switch fault.action {
        case .kill: processes.signal(fault.relay, SIGKILL)
        case .stop: processes.signal(fault.relay, SIGSTOP)
        case .cont: processes.signal(fault.relay, SIGCONT)
        case .term: processes.signal(fault.relay, SIGTERM)
        case .start:
            // Never two processes under one relay name: the old one would release the new one's lanes.
            if processes.isRunning(fault.relay) { _ = await processes.terminate(fault.relay) }
            try processes.start(fault.relay)
        }
    }

    private func report(
        context: LoadtestContext, client: PostgresClient, topic: String, started: Date, t0: ContinuousClock.Instant,
        commits commitLog: CommitLog, arrivals: ArrivalLog, total: Int, warmUp: Int64, events: [RunReport.FaultEvent],
        shares: [RunReport.RelayShare], peakRSS: Int, exitCodes: [Int32?], backlog: [Int: Int]
    ) async throws -> RunReport {
        let commits = commitLog.commits
        let firstArrival = arrivals.firstArrival
        let seeder = Seeder(client: client, schema: context.schema, logger: context.logger)
        let dead = try await seeder.ids(topic: topic, table: "dead_letters")
        // The ledger reads the topic again from offset 0 to its end, like drain's: the follower is
        // for latency only, and a broker slow to serve fetches (Tansu after a minute of writes)
        // can leave it behind while every record is long acknowledged.
        Progress.line("reading topic \(topic) back for the ledger…")
        let records = try await KafkaTopicReader.readAll(
            topic: topic, bootstrapServers: context.brokers, properties: context.settings.kafkaProperties,
            timeout: .seconds(300), logger: context.logger)
        let ledger = try LedgerCheck.check(records: records, expectedIDs: Set(commits.keys), deadLettered: dead)

        var histogram = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        struct Bin { var consumed = 0; var enqueued = 0; var latencies: [Double] = [] }
        var bins: [Int: Bin] = [:]
        for (id, committed) in commits {
            bins[Int((committed - t0).seconds.rounded(.down)), default: Bin()].enqueued += 1
            guard let arrived = firstArrival[id] else { continue }
            let micros = max((arrived - committed).seconds * 1_000_000, 0)
            _ = histogram.record(UInt64(micros))
            let second = Int((arrived - t0).seconds.rounded(.down))
            bins[second, default: Bin()].consumed += 1
            bins[second, default: Bin()].latencies.append(micros / 1000)
        }
        let timeline = bins.keys.sorted().filter { $0 >= 0 }.map { second -> RunReport.TimelineSample in
            let bin = bins[second]!
            let summary = RunReport.LatencySummary(bin.latencies)
            return .init(
                seconds: Double(second + 1), publishedPerSecond: Double(bin.consumed), enqueuedPerSecond: Double(bin.enqueued),
                pending: backlog[second + 1], p50Milliseconds: summary?.p50, p99Milliseconds: summary?.p99, maxMilliseconds: summary?.max)
        }
        func ms(_ p: Double) -> Double { Double(histogram.valueAtPercentile(p)) / 1000 }
        let latency = RunReport.LatencySummary(
            count: Int(histogram.totalCount), p50: ms(50), p90: ms(90), p99: ms(99), p999: ms(99.9),
            max: Double(histogram.max) / 1000, mean: histogram.mean / 1000)
        let curve = [0.0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999].map {
            RunReport.PercentilePoint(percentile: $0, milliseconds: ms($0))
        }
        // The split at the broker: commit → the relay's produce call (the record's CreateTime, 1 ms
        // resolution) and from there → the consumer. Tells the relay's share from the broker's.
        let commitWall = commitLog.wallMilliseconds
        var toProduce: [Double] = [], toConsume: [Double] = []
        for (id, times) in arrivals.producedAndArrivedWall {
            guard let committed = commitWall[id] else { continue }
            toProduce.append(max(times.produced - committed, 0))
            toConsume.append(max(times.arrived - times.produced, 0))
        }
        let lastCommit = commits.values.max() ?? t0
        var report = RunReport(
            mode: mode, command: CommandLine.arguments.joined(separator: " "), machine: LoadtestContext.machine(),
            startedAt: started,
            parameters: .init(
                rate: rate, durationSeconds: duration.seconds, relays: relays, payloadBytes: payloadBytes, keys: keys,
                batchSize: batchSize, schema: context.schema.rawValue, topic: topic,
                conditions: holdXmin ? HeldHorizon.condition : nil),
            steady: .init(
                enqueued: commits.count, achievedRate: Double(commits.count) / max((lastCommit - t0).seconds, 1e-3),
                maxScheduleLagMilliseconds: commitLog.maxLag.seconds * 1000, latency: latency, percentileCurve: curve,
                commitToProduce: RunReport.LatencySummary(toProduce), produceToConsume: RunReport.LatencySummary(toConsume),
                maxBacklog: backlog.values.max()),
            relayPeakRSSMiB: Double(peakRSS) / 1024, relayExitCodes: exitCodes, ledger: ledger, timeline: timeline,
            relayShares: httpPortBase > 0 ? shares : [], faults: events)
        report.targets = targets(report, total: total)
        return report
    }

    private func targets(_ report: RunReport, total: Int) -> [RunReport.TargetCheck] {
        var targets: [RunReport.TargetCheck] = []
        if let steady = report.steady {
            let achieved = Double(steady.enqueued) / Double(max(total, 1))
            targets.append(.init(
                name: "load offered", target: "\(total) messages at \(rate) msg/s",
                measured: String(format: "%d (%.0f msg/s)", steady.enqueued, steady.achievedRate), met: achieved >= 0.99))
            if mode == "steady" {
                targets.append(.init(name: "p50 commit → consume", target: "≤ 5 ms", measured: String(format: "%.1f ms", steady.latency.p50), met: steady.latency.p50 <= 5))
                targets.append(.init(name: "p99 commit → consume", target: "≤ 25 ms", measured: String(format: "%.1f ms", steady.latency.p99), met: steady.latency.p99 <= 25))
            }
        }
        if let ledger = report.ledger {
            targets.append(.init(
                name: "ledger", target: "0 lost, 0 order violations",
                measured: "\(ledger.lost) lost, \(ledger.orderViolations) order violations, \(ledger.duplicates) duplicates",
                met: ledger.clean))
        }
        return targets
    }
}

/// How many writers have finished (normally or not), shared by the writer tasks and the monitor.
final class DoneCounter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
