import ArgumentParser
import Foundation
import Logging
import Outbox
import OutboxRelay
import PostgresNIO

/// `drain`: a backlog of N messages, K relays, time until the outbox is empty, then the ledger.
struct DrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract: "Seed N messages with COPY, start K relay processes, measure until the outbox is empty, check the ledger.")

    @Option(help: "Messages to seed.") var messages = 100_000
    @Option(help: "Relay processes to start.") var relays = 1
    @Option(name: .customLong("payload-bytes"), help: "Payload size.") var payloadBytes = 256
    @Option(help: "Distinct keys (round robin).") var keys = 1000
    @Option(name: .customLong("batch-size"), help: "Relay batch size.") var batchSize = 1000
    @Option(help: "Schema for the run (migrated if needed; must hold no pending messages).") var schema = "loadtest"
    @Option(help: "Folder for results (JSON, Markdown, relay logs).") var output = "loadtest-results"
    @Option(help: "Give up after this many seconds.") var timeout = 600

    func validate() throws {
        guard messages >= 1, relays >= 1, relays <= 32, payloadBytes >= 0, keys >= 1, timeout >= 1 else {
            throw ValidationError("--messages, --relays (1-32), --keys and --timeout must be positive, --payload-bytes ≥ 0")
        }
    }

    func run() async throws {
        var logger = Logger(label: "outbox-loadtest")
        logger.logLevel = .warning
        let environment = ProcessInfo.processInfo.environment
        let settings: RelaySettings
        let schemaName: SchemaName
        do {
            settings = try RelaySettings(values: environment.filter { RelaySettings.knownNames.contains($0.key) })
            schemaName = try SchemaName(schema)
            _ = try settings.requireKafkaBrokers()
        } catch {
            FileHandle.standardError.write(Data("outbox-loadtest: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let brokers = settings.kafkaBrokers!
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let directory = URL(fileURLWithPath: output).appendingPathComponent("drain-\(stamp)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let topic = "loadtest-drain-\(stamp.lowercased())"

        try await DatabaseProbe.check(settings.database, logger: logger)
        let client = PostgresClient(configuration: settings.database.clientConfiguration(), backgroundLogger: logger)
        let report = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await Migrator(schema: schemaName).migrate(client: client, logger: logger)
            let pendingBefore = try await count(client, "SELECT count(*) FROM \(schema).messages", logger: logger)
            guard pendingBefore == 0 else {
                throw LoadtestError("schema \(schema) holds \(pendingBefore) pending messages; use a fresh --schema or drain it first")
            }
            let seeder = Seeder(client: client, schema: schemaName, logger: logger)
            progress("seeding \(messages) messages (\(payloadBytes) B payload, \(keys) keys) into \(schema).messages with COPY…")
            let seedStart = ContinuousClock.now
            let ids = try await seeder.seed(topic: topic, count: messages, keys: keys, payloadBytes: payloadBytes)
            let seedSeconds = (ContinuousClock.now - seedStart).seconds
            try await client.query(PostgresQuery(unsafeSQL: "VACUUM ANALYZE \(schema).messages"), logger: logger)

            var relayEnvironment = environment.filter { !$0.key.hasPrefix("OUTBOX_") }
            relayEnvironment["OUTBOX_DATABASE_URL"] = environment["OUTBOX_DATABASE_URL"]
            relayEnvironment["OUTBOX_KAFKA_BROKERS"] = brokers
            relayEnvironment["OUTBOX_SCHEMA"] = schema
            relayEnvironment["OUTBOX_LOG_LEVEL"] = "notice"
            if let properties = environment["OUTBOX_KAFKA_PROPERTIES"] { relayEnvironment["OUTBOX_KAFKA_PROPERTIES"] = properties }
            let processes = RelayProcesses()
            progress("starting \(relays) relay(s): \(RelayProcesses.relayBinary)")
            let start = ContinuousClock.now
            try processes.start(
                count: relays, arguments: ["--batch-size", "\(batchSize)", "--poll-interval", "100ms"],
                environment: relayEnvironment, logDirectory: directory)

            var samples: [DrainReport.Sample] = []
            var firstProgress: Double?
            var peakRSS = 0
            var lastPrint = ContinuousClock.now
            var pending = messages
            while pending > 0 {
                if (ContinuousClock.now - start).seconds > Double(timeout) {
                    _ = await processes.stop()
                    throw LoadtestError("gave up after \(timeout) s with \(pending) messages pending (relay logs in \(directory.path))")
                }
                try await Task.sleep(for: .milliseconds(100))
                pending = Int(try await count(client, "SELECT count(*) FROM \(schema).messages WHERE topic = '\(topic)'", logger: logger))
                let elapsed = (ContinuousClock.now - start).seconds
                if firstProgress == nil, pending < messages { firstProgress = elapsed }
                peakRSS = max(peakRSS, processes.pids.map(Self.residentKilobytes).max() ?? 0)
                samples.append(.init(seconds: elapsed, pending: pending))
                if ContinuousClock.now - lastPrint > .seconds(1) {
                    lastPrint = ContinuousClock.now
                    progress(String(format: "  %6.1fs  published %d / %d", elapsed, messages - pending, messages))
                }
            }
            let drainSeconds = (ContinuousClock.now - start).seconds
            let exitCodes = await processes.stop()

            progress("reading topic \(topic) back for the ledger…")
            let records = try await KafkaTopicReader.readAll(topic: topic, bootstrapServers: brokers, timeout: .seconds(300), logger: logger)
            let dead = try await seeder.ids(topic: topic, table: "dead_letters")
            let ledger = try LedgerCheck.check(records: records, expectedIDs: ids, deadLettered: dead)
            let steady = drainSeconds - (firstProgress ?? 0)
            return DrainReport(
                mode: "drain", messages: messages, relays: relays, payloadBytes: payloadBytes, keys: keys, batchSize: batchSize,
                topic: topic, seedSeconds: seedSeconds, seedRate: Double(messages) / seedSeconds,
                drainSeconds: drainSeconds, throughput: Double(messages) / drainSeconds,
                firstPublishSeconds: firstProgress ?? drainSeconds,
                steadyThroughput: steady > 0 ? Double(messages) / steady : Double(messages) / drainSeconds,
                relayPeakRSSMiB: Double(peakRSS) / 1024, relayExitCodes: exitCodes, ledger: ledger, samples: samples,
                machine: Self.machine())
        }
        let json = JSONEncoder()
        json.outputFormatting = [.prettyPrinted, .sortedKeys]
        try json.encode(report).write(to: directory.appendingPathComponent("report.json"))
        let markdown = report.markdown
        try Data(markdown.utf8).write(to: directory.appendingPathComponent("report.md"))
        print(markdown)
        print("results: \(directory.path)")
        guard report.ledger.clean, report.relayExitCodes.allSatisfy({ $0 == 0 }) else {
            FileHandle.standardError.write(Data("outbox-loadtest: the ledger is not clean or a relay did not exit cleanly\n".utf8))
            throw ExitCode(1)
        }
    }

    private func count(_ client: PostgresClient, _ sql: String, logger: Logger) async throws -> Int64 {
        for try await value in try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(Int64.self) {
            return value
        }
        return 0
    }

    private func progress(_ line: String) {
        FileHandle.standardError.write(Data("\(line)\n".utf8))
    }

    /// VmRSS of a process, from /proc (0 when it is gone).
    static func residentKilobytes(_ pid: pid_t) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }

    static func machine() -> String {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let memory = Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824
        return String(format: "%@, %d cores, %.0f GiB", ProcessInfo.processInfo.hostName, cores, memory)
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
