import ArgumentParser
import Foundation
import Logging
import Outbox
import OutboxTestSupport
@_spi(Benchmark) import OutboxRelay
import PostgresNIO

/// `drain`: a backlog of N messages, K relays, time until the outbox is empty, then the ledger —
/// by default against this machine's ceilings measured first, in the same run.
struct DrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract: "Seed N messages with COPY, start K relay processes, measure until the outbox is empty, check the ledger.")

    @Option(help: "Messages to seed.") var messages = 100_000
    @Option(help: "Relay processes to start.") var relays = 1
    @Option(name: .customLong("payload-bytes"), help: "Payload size.") var payloadBytes = 256
    @Option(help: "Distinct keys (round robin).") var keys = 1000
    @Option(name: .customLong("batch-size"), help: "Relay batch size.") var batchSize = 1000
    @Flag(inversion: .prefixedNo, help: "Measure the database and produce ceilings first and report the drain as a ratio of them.")
    var ceiling = true
    @Option(help: "Schema for the run (migrated if needed; must hold no pending messages).") var schema = "loadtest"
    @Option(help: "Folder for results (JSON, Markdown, HTML, relay logs).") var output = "loadtest-results"
    @Option(name: .customLong("http-port-base"), help: "Relay i serves /metrics on this port + i (0: off, no per-relay shares).")
    var httpPortBase = 19_470
    @Option(help: "Give up after this many seconds.") var timeout = 600
    @Flag(
        name: .customLong("hold-xmin"),
        help: "Keep a REPEATABLE READ transaction open from before the seed to the end, as a long report or a stuck session would: no row deleted meanwhile can be vacuumed.")
    var holdXmin = false
    @Option(
        name: .customLong("dead-rows"),
        help: "Before the seed, insert and delete this many rows (dead tuples the relays' reads meet; kept with --hold-xmin).")
    var deadRows = 0
    @Flag(
        inversion: .prefixedNo,
        help: "VACUUM ANALYZE the outbox after the seed (--no-analyze: drain a fresh bulk backlog the planner has no statistics of).")
    var analyze = true
    @Option(
        name: .customLong("held-key-rows"),
        help: "Before the seed, this many rows of one key of its own behind a retry that is not due during the run (a hot key whose first message keeps failing): every read of its lane meets them.")
    var heldKeyRows = 0
    @Flag(
        name: .customLong("naive"),
        help: "Drain with the reference instead of outbox-relay: --relays loops of SELECT … FOR UPDATE SKIP LOCKED, produce, wait, DELETE, COMMIT (in this process).")
    var naive = false
    @Flag(
        name: .customLong("trace-sink"),
        help: "Relays export their spans over OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT) to a collector stand-in in this process, which answers as a collector does and only counts: the cost of tracing every message.")
    var traceSink = false

    func validate() throws {
        guard messages >= 1, deadRows >= 0, heldKeyRows >= 0, (1...32).contains(relays), payloadBytes >= 0, keys >= 1, timeout >= 1,
            (1...10_000).contains(batchSize), httpPortBase == 0 || (1024...65_000).contains(httpPortBase)
        else {
            throw ValidationError(
                "--messages, --keys and --timeout must be positive, --dead-rows and --held-key-rows ≥ 0, --relays 1-32, --payload-bytes ≥ 0, --batch-size 1-10000, --http-port-base 0 or 1024-65000")
        }
    }

    func run() async throws {
        let context = try LoadtestContext.make(mode: "drain", schema: schema, output: output)
        let started = Date()
        let topic = "loadtest-drain-\(context.stamp)"
        let logger = context.logger
        var report = try await context.withDatabase { client in
            try await HeldHorizon.around(holdXmin ? client : nil, logger: logger) {
            let ceilingFigures: RunReport.CeilingFigures? =
                ceiling
                ? try await CeilingRunner(
                    context: context, client: client, messages: messages, keys: keys, payloadBytes: payloadBytes,
                    batchSize: batchSize, inFlight: 8
                ).measure()
                : nil

            let seeder = Seeder(client: client, schema: context.schema, logger: logger)
            if deadRows > 0 {
                Progress.line("leaving \(deadRows) dead rows in \(schema).messages\(holdXmin ? " (not vacuumable: the horizon is held)" : "")…")
                _ = try await seeder.seed(topic: "\(topic)-dead", count: deadRows, keys: keys, payloadBytes: payloadBytes)
                try await seeder.delete(topic: "\(topic)-dead")
            }
            if heldKeyRows > 0 {
                Progress.line("seeding \(heldKeyRows) rows of one key held behind a retry that is not due in this run…")
                _ = try await seeder.seed(topic: "\(topic)-held", count: heldKeyRows, keys: 1, payloadBytes: payloadBytes, keyPrefix: "held-")
                try await seeder.holdFirst(topic: "\(topic)-held")
            }
            Progress.line("seeding \(messages) messages (\(payloadBytes) B payload, \(keys) keys) into \(schema).messages with COPY…")
            let seedStart = ContinuousClock.now
            let ids = try await seeder.seed(topic: topic, count: messages, keys: keys, payloadBytes: payloadBytes)
            let seedSeconds = (ContinuousClock.now - seedStart).seconds
            if analyze { try await client.query(PostgresQuery(unsafeSQL: "VACUUM ANALYZE \(schema).messages"), logger: logger) }

            let profile = StatementProfile(client: client, logger: logger)
            let profiling = await profile.reset()
            let sink = traceSink ? try await OTLPReceiver.start(keepBodies: false) : nil
            var environment = context.relayEnvironment()
            if let sink {
                environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.endpoint
                // A queue that holds a drain's spans between exports, so none is dropped and the
                // run pays for every one (the default queue of 2,048 drops most of them).
                for (name, value) in ["OTEL_BSP_MAX_QUEUE_SIZE": "200000", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4096", "OTEL_BSP_SCHEDULE_DELAY": "500"]
                where environment[name] == nil {
                    environment[name] = value
                }
            }
            let processes = RelayProcesses(
                count: relays, arguments: ["--batch-size", "\(batchSize)", "--poll-interval", "100ms"],
                environment: environment, logDirectory: context.directory, httpPortBase: httpPortBase)
            let cpu = CPUAccount.forRun(
                relays: processes, postmaster: try await context.localPostmaster(client), brokers: context.brokers)
            Progress.line(naive ? "starting \(relays) naive reference loop(s)" : "starting \(relays) relay(s): \(RelayProcesses.relayBinary)")
            let cpuAtStart = cpu.sample()
            let start = ContinuousClock.now
            let reference: Task<Int, any Error>? =
                naive
                ? Task { [relays, batchSize, schema = context.schema, configuration = context.producerConfiguration] in
                    try await NaiveRelay.drain(
                        client: client, schema: schema, batchSize: batchSize, loops: relays, configuration: configuration, logger: logger)
                }
                : nil
            if !naive { try processes.startAll() }

            var pendingSamples: [(seconds: Double, pending: Int)] = []
            var shares = (0..<relays).map { RunReport.RelayShare(relay: RelayProcesses.name($0), samples: []) }
            var firstProgress: Double?
            var peakRSS = 0
            var lastPrint = ContinuousClock.now
            var lastShare = ContinuousClock.now - .seconds(1)
            var lastCount = ContinuousClock.now
            var pending = messages
            // Progress comes from the relays' own counters when they serve /metrics: counting the
            // outbox every 100 ms walks the whole table and took a third of the database's time.
            // The outbox is counted only to confirm it is empty (and every 0.5 s without /metrics).
            let pendingQuery = "SELECT count(*) FROM \(schema).messages WHERE topic = '\(topic)'"
            while pending > 0 {
                if (ContinuousClock.now - start).seconds > Double(timeout) {
                    reference?.cancel()
                    _ = await processes.stop()
                    throw LoadtestError("gave up after \(timeout) s with \(pending) messages pending (relay logs in \(context.directory.path))")
                }
                // Every 10 ms until the first message is out, so the time to the first publish
                // (the cold start) is measured to 10 ms rather than to the 100 ms of the rest.
                try await Task.sleep(for: firstProgress == nil ? .milliseconds(10) : .milliseconds(100))
                let elapsed = (ContinuousClock.now - start).seconds
                let published = processes.publishedTotals().compactMap { $0 }
                var estimate: Int?
                if published.count == relays {
                    estimate = max(messages - Int(published.reduce(0, +)), 0)
                    if ContinuousClock.now - lastShare >= .milliseconds(500) {
                        lastShare = ContinuousClock.now
                        for (index, value) in published.enumerated() {
                            shares[index].samples.append(.init(seconds: elapsed, published: value))
                        }
                    }
                }
                if estimate == 0 || (estimate == nil && ContinuousClock.now - lastCount >= .milliseconds(500)) {
                    lastCount = ContinuousClock.now
                    estimate = Int(try await client.scalar(pendingQuery, logger: logger))
                }
                if let estimate { pending = estimate }
                if firstProgress == nil, pending < messages { firstProgress = elapsed }
                peakRSS = max(peakRSS, processes.residentKilobytes())
                pendingSamples.append((elapsed, pending))
                if ContinuousClock.now - lastPrint > .seconds(1) {
                    lastPrint = ContinuousClock.now
                    Progress.line(String(format: "  %6.1fs  published %d / %d", elapsed, messages - pending, messages))
                }
            }
            let drainSeconds = (ContinuousClock.now - start).seconds
            let processCPU = cpu.figures(from: cpuAtStart, to: cpu.sample(), messages: messages)
            for (index, published) in processes.publishedTotals().enumerated() {
                if let published { shares[index].samples.append(.init(seconds: drainSeconds, published: published)) }
            }
            if let reference { _ = try await reference.value }
            let exitCodes = naive ? [] : await processes.stop()
            if let sink {
                Progress.line(String(format: "trace sink: %d export requests, %.1f MiB of spans", sink.requestCount, Double(sink.bytesReceived) / 1_048_576))
                await sink.close()
            }
            if heldKeyRows > 0 { try await seeder.delete(topic: "\(topic)-held") }
            let statements = profiling ? (try? await profile.top(schema: schema)) ?? [] : []

            Progress.line("reading topic \(topic) back for the ledger…")
            let records = try await KafkaTopicReader.readAll(
                topic: topic, bootstrapServers: context.brokers, timeout: .seconds(300), logger: logger)
            let dead = try await seeder.ids(topic: topic, table: "dead_letters")
            let ledger = try LedgerCheck.check(records: records, expectedIDs: ids, deadLettered: dead)
            let first = firstProgress ?? drainSeconds
            let steady = drainSeconds - first
            return RunReport(
                mode: "drain", command: CommandLine.arguments.joined(separator: " "), machine: LoadtestContext.machine(),
                startedAt: started,
                parameters: .init(
                    messages: messages, relays: relays, payloadBytes: payloadBytes, keys: keys, batchSize: batchSize,
                    schema: schema, topic: topic, conditions: conditions),
                ceiling: ceilingFigures,
                drain: .init(
                    seedSeconds: seedSeconds, seedRate: Double(messages) / seedSeconds, drainSeconds: drainSeconds,
                    throughput: Double(messages) / drainSeconds, firstPublishSeconds: first,
                    steadyThroughput: steady > 0 ? Double(messages) / steady : Double(messages) / drainSeconds),
                relayPeakRSSMiB: Double(peakRSS) / 1024, relayExitCodes: exitCodes, ledger: ledger,
                timeline: Self.timeline(pendingSamples, total: messages, interval: 0.5),
                relayShares: httpPortBase > 0 ? shares : [], databaseStatements: statements, processCPU: processCPU)
            }
        }
        report.targets = targets(report)
        try context.write(report)
        // The naive reference is expected to break per-key order with more than one loop (the
        // ledger reports it); losing a message is a failure whoever drains.
        let ledgerOK = naive ? report.ledger?.lost == 0 : report.ledger?.clean == true
        guard ledgerOK, report.relayExitCodes.allSatisfy({ $0 == 0 }) else {
            Progress.line("outbox-loadtest: the ledger is not clean or a relay did not exit cleanly")
            throw ExitCode(1)
        }
    }

    private var conditions: String? {
        let parts = [
            naive ? "reference: \(relays) naive SKIP LOCKED loop(s) in the load test, not outbox-relay" : nil,
            holdXmin ? HeldHorizon.condition : nil,
            deadRows > 0 ? "\(deadRows) dead rows before the seed" : nil,
            heldKeyRows > 0 ? "\(heldKeyRows) rows of one key held behind a retry" : nil,
            analyze ? nil : "no ANALYZE after the seed",
            traceSink ? "every message traced: spans exported over OTLP/HTTP to a collector stand-in" : nil,
        ]
            .compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }

    private func targets(_ report: RunReport) -> [RunReport.TargetCheck] {
        var targets: [RunReport.TargetCheck] = []
        if let drain = report.drain, let ceiling = report.ceiling {
            let ratio = drain.throughput / ceiling.limit
            targets.append(.init(
                name: "drain vs. machine limit", target: "≥ 70 %",
                measured: String(format: "%.0f %% (%@ of %@)", ratio * 100, RunReport.rate(drain.throughput), RunReport.rate(ceiling.limit)),
                met: ratio >= 0.7))
        }
        if let rss = report.relayPeakRSSMiB {
            targets.append(.init(name: "relay resident memory", target: "≤ 100 MiB", measured: String(format: "%.1f MiB", rss), met: rss <= 100))
        }
        if let ledger = report.ledger {
            targets.append(.init(
                name: "ledger", target: "0 lost, 0 order violations",
                measured: "\(ledger.lost) lost, \(ledger.orderViolations) order violations", met: ledger.clean))
        }
        return targets
    }

    /// Published per second from the pending counts, in `interval`-second steps.
    static func timeline(_ samples: [(seconds: Double, pending: Int)], total: Int, interval: Double) -> [RunReport.TimelineSample] {
        var timeline: [RunReport.TimelineSample] = []
        var lastSeconds = 0.0
        var lastPending = total
        for sample in samples where sample.seconds - lastSeconds >= interval || sample.pending == 0 {
            let span = sample.seconds - lastSeconds
            guard span > 0 else { continue }
            timeline.append(.init(
                seconds: sample.seconds, publishedPerSecond: Double(lastPending - sample.pending) / span, pending: sample.pending))
            lastSeconds = sample.seconds
            lastPending = sample.pending
        }
        return timeline
    }
}
