import Foundation
import OutboxTestSupport
import Testing

/// Seconds-long runs of every `outbox-loadtest` mode (no timing asserted): each tool path works end
/// to end against the real services, writes its three reports, and its ledger is clean.
@Suite(.serialized) struct LoadtestSmokeTests {
    /// What one run left: its stdout and the report files.
    struct SmokeRun: Sendable {
        var stdout: String
        var json: Data
        var html: String
        var report: [String: Any] { (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] ?? [:] }
    }

    /// Runs the tool on a fresh schema, expects exit 0 and one results folder with the three
    /// reports, and hands them to `check`.
    private func run(
        _ arguments: [String], timeout: Duration = .seconds(180), environment: [String: String] = [:],
        check: @escaping @Sendable (SmokeRun) throws -> Void
    ) async throws {
        try await OutboxFixture.with { fixture in
            let output = NSTemporaryDirectory() + "loadtest-smoke-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: output) }
            let tool = ChildProcess.binDirectory.appendingPathComponent("outbox-loadtest").path
            let process = try ChildProcess(
                tool, arguments + ["--schema", fixture.schema.rawValue, "--output", output],
                environment: ChildProcess.environment(
                    [
                        "OUTBOX_DATABASE_URL": TestServices.databaseURL, "OUTBOX_KAFKA_BROKERS": TestServices.brokers,
                    ].merging(environment) { $1 }))
            let code = await process.wait(timeout: timeout)
            let folders = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
            #expect(code == 0, "stderr: \(process.standardError.suffix(3000))\n\(Self.relayLogs(in: folders.map { "\(output)/\($0)" }))")
            guard folders.count == 1 else {
                Issue.record("expected one results folder, found \(folders); stderr: \(process.standardError.suffix(3000))")
                return
            }
            let folder = "\(output)/\(folders[0])"
            #expect(FileManager.default.fileExists(atPath: "\(folder)/report.md"))
            try check(SmokeRun(
                stdout: process.standardOutput,
                json: try Data(contentsOf: URL(fileURLWithPath: "\(folder)/report.json")),
                html: (try? String(contentsOfFile: "\(folder)/report.html", encoding: .utf8)) ?? ""))
        }
    }

    /// The end of each relay's log of a run (the results folder is removed after the test).
    private static func relayLogs(in folders: [String]) -> String {
        folders.flatMap { folder in
            ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasPrefix("relay-") }.sorted().map {
                "\($0): \(((try? String(contentsOfFile: "\(folder)/\($0)", encoding: .utf8)) ?? "").suffix(2000))"
            }
        }.joined(separator: "\n")
    }

    private static func expectCleanLedger(_ report: [String: Any], unique: Int) {
        let ledger = report["ledger"] as? [String: Any]
        #expect(ledger?["lost"] as? Int == 0)
        #expect(ledger?["unique"] as? Int == unique)
        #expect(ledger?["orderViolations"] as? Int == 0)
    }

    /// `--hold-xmin` and `--dead-rows`: the run says what it did to the database, the statement
    /// profile has buffers per 1,000 rows, and the ledger is clean.
    @Test func drainUnderAHeldHorizonWithDeadRowsReportsItsConditionsAndTheReadsBuffers() async throws {
        try await run(
            ["drain", "--messages", "2000", "--relays", "1", "--no-ceiling", "--hold-xmin", "--dead-rows", "5000", "--timeout", "120",
             "--http-port-base", "0"]
        ) { run in
            let report = run.report
            Self.expectCleanLedger(report, unique: 2000)
            let parameters = report["parameters"] as? [String: Any]
            #expect((parameters?["conditions"] as? String)?.contains("5000 dead rows") == true)
            #expect(run.stdout.contains("xmin horizon held"))
            let statements = report["databaseStatements"] as? [[String: Any]] ?? []
            let read = statements.first { ($0["statement"] as? String)?.contains("pg_snapshot_xmin") == true }
            #expect(((read?["buffers"] as? Int) ?? 0) > 0, "\(statements)")
            #expect(run.stdout.contains("buffers / 1,000 rows"))
        }
    }

    /// `--held-key-rows`, `--no-analyze` and the batch byte limit passed to the relays: the held
    /// key's rows stay out of the ledger (and are removed afterwards), everything else drains in
    /// batches the byte limit cut (2 KiB rows, 64 KiB: about 32 a read instead of 1,000).
    @Test func drainBehindAHeldKeyWithAByteLimitReportsItAndDrainsTheRest() async throws {
        try await run(
            ["drain", "--messages", "2000", "--relays", "1", "--no-ceiling", "--held-key-rows", "3000", "--payload-bytes", "2048",
             "--no-analyze", "--timeout", "120", "--http-port-base", "0"],
            environment: ["OUTBOX_BATCH_MAX_BYTES": "64KiB"]
        ) { run in
            let report = run.report
            Self.expectCleanLedger(report, unique: 2000)
            let parameters = report["parameters"] as? [String: Any]
            #expect((parameters?["conditions"] as? String)?.contains("3000 rows of one key held behind a retry") == true)
            #expect((parameters?["conditions"] as? String)?.contains("no ANALYZE after the seed") == true)
            let statements = report["databaseStatements"] as? [[String: Any]] ?? []
            let read = statements.first { ($0["statement"] as? String)?.contains("pg_snapshot_xmin") == true }
            #expect(((read?["calls"] as? Int) ?? 0) >= 2000 / 64, "reads cut at 64 KiB: \(statements)")
        }
    }

    /// `--naive`: the reference relay drains everything through the same ledger, which counts what
    /// two loops without lanes do to per-key order (reported, not a failure of the tool).
    @Test func theNaiveReferenceDrainsEverythingAndTheLedgerCountsItsOrderViolations() async throws {
        try await run(
            ["drain", "--naive", "--messages", "2000", "--relays", "2", "--keys", "20", "--batch-size", "100", "--no-ceiling",
             "--timeout", "120", "--http-port-base", "0"]
        ) { run in
            let report = run.report
            let ledger = report["ledger"] as? [String: Any]
            #expect(ledger?["lost"] as? Int == 0)
            #expect(ledger?["unique"] as? Int == 2000)
            #expect(ledger?["orderViolations"] is Int)
            #expect(run.stdout.contains("naive SKIP LOCKED"))
            #expect((report["relayExitCodes"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func drainWithTwoRelaysReportsACleanLedgerAndTheCeilings() async throws {
        try await run(
            ["drain", "--messages", "3000", "--relays", "2", "--keys", "100", "--batch-size", "250", "--timeout", "120",
             "--http-port-base", "19570"]
        ) { run in
            let report = run.report
            #expect(run.stdout.contains("**lost 0**"))
            #expect(run.stdout.contains("of the machine limit"))
            Self.expectCleanLedger(report, unique: 3000)
            #expect((report["relayExitCodes"] as? [Int]) == [0, 0])
            let ceiling = report["ceiling"] as? [String: Any]
            #expect(((ceiling?["database"] as? [String: Any])?["messages"] as? Int) == 3000)
            // Both relays' counters were scraped, and together they published everything.
            let shares = report["relayShares"] as? [[String: Any]] ?? []
            #expect(shares.count == 2)
            let published = shares.compactMap { ($0["samples"] as? [[String: Any]])?.last?["published"] as? Double }.reduce(0, +)
            #expect(published == 3000)
            // CPU of every process group, from /proc: the relays, PostgreSQL and the broker all worked.
            let cpu = Dictionary(
                (report["processCPU"] as? [[String: Any]] ?? []).map { ($0["name"] as? String ?? "", $0["seconds"] as? Double ?? 0) },
                uniquingKeysWith: +)
            #expect(Set(cpu.keys) == ["relays", "postgres", "broker", "load test"])
            #expect(cpu["relays", default: 0] > 0 && cpu["postgres", default: 0] > 0 && cpu["broker", default: 0] > 0)
            #expect(run.stdout.contains("CPU seconds per 1,000 messages"))
            #expect(run.html.contains("<svg") && run.html.contains("Throughput over time") && run.html.contains("Per-relay share"))
        }
    }

    @Test func ceilingMeasuresBothLimits() async throws {
        try await run(["ceiling", "--messages", "2000", "--batch-size", "500"]) { run in
            let ceiling = run.report["ceiling"] as? [String: Any]
            for probe in ["database", "produceOneBatch", "produceStreaming"] {
                let result = ceiling?[probe] as? [String: Any]
                #expect(result?["messages"] as? Int == 2000, "\(probe)")
                #expect((result?["seconds"] as? Double ?? 0) > 0, "\(probe)")
            }
            #expect(run.html.contains("Against this machine"))
        }
    }

    @Test func steadyMeasuresLatencyOfEveryCommittedMessage() async throws {
        try await run(
            ["steady", "--rate", "200", "--duration", "3s", "--relays", "1", "--keys", "50", "--writers", "4",
             "--http-port-base", "19580", "--broker-floor", "1"]
        ) { run in
            let report = run.report
            #expect(run.stdout.contains("commit → consume"))
            Self.expectCleanLedger(report, unique: 600)
            let latency = (report["steady"] as? [String: Any])?["latency"] as? [String: Any]
            #expect(latency?["count"] as? Int == 600)
            let relayCPU = (report["processCPU"] as? [[String: Any]] ?? []).first { $0["name"] as? String == "relays" }
            #expect((relayCPU?["seconds"] as? Double ?? 0) > 0)
            let p50 = latency?["p50"] as? Double ?? -1, p99 = latency?["p99"] as? Double ?? -1
            #expect(p50 > 0 && p50 <= p99)
            let floor = (report["steady"] as? [String: Any])?["brokerFloor"] as? [String: Any]
            #expect(floor?["count"] as? Int == 200)
            #expect(run.html.contains("latency by percentile"))
        }
    }

    @Test func chaosKillsFreezesAndRestartsRelaysAndTheLedgerStaysClean() async throws {
        try await run(
            ["chaos", "--rate", "200", "--duration", "8s", "--relays", "2", "--keys", "50", "--writers", "4",
             "--lease-ttl", "2s", "--fault", "1s:kill:0", "--fault", "2s:start:0", "--fault", "4s:stop:1",
             "--fault", "7s:cont:1", "--http-port-base", "19590", "--broker-floor", "0",
             "--no-explicit-transactions"],
            timeout: .seconds(240)
        ) { run in
            let report = run.report
            Self.expectCleanLedger(report, unique: 1600)
            let faults = report["faults"] as? [[String: Any]] ?? []
            #expect(faults.compactMap { $0["action"] as? String } == ["kill", "start", "stop", "cont"])
            #expect(run.html.contains("kill 0"))
        }
    }
}
