import ArgumentParser
import Foundation
import Logging
import Outbox
@_spi(Benchmark) import OutboxRelay
import PostgresNIO

/// What every mode starts from: the relay's own settings (same environment variables), a
/// results folder named after the mode and the time, and a database client.
struct LoadtestContext {
    let settings: RelaySettings
    let brokers: String
    let schema: SchemaName
    let environment: [String: String]
    /// Results of this run: report.json, report.md, report.html and one log per relay.
    let directory: URL
    /// Lower-case, for topic names.
    let stamp: String
    let logger: Logger

    /// Reads the settings; a configuration error is one line on stderr and exit code 2.
    static func make(mode: String, schema: String, output: String) throws -> LoadtestContext {
        var logger = Logger(label: "outbox-loadtest")
        logger.logLevel = .warning
        let environment = ProcessInfo.processInfo.environment
        do {
            let settings = try RelaySettings(values: environment.filter { RelaySettings.knownNames.contains($0.key) })
            let brokers = try settings.requireKafkaBrokers()
            let schemaName = try SchemaName(schema)
            let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "").lowercased()
            let directory = URL(fileURLWithPath: output).appendingPathComponent("\(mode)-\(stamp)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            return LoadtestContext(
                settings: settings, brokers: brokers, schema: schemaName, environment: environment, directory: directory,
                stamp: stamp, logger: logger)
        } catch let error as ConfigurationError {
            Progress.line("outbox-loadtest: \(error)")
            throw ExitCode(2)
        } catch let error as InvalidSchemaName {
            Progress.line("outbox-loadtest: --schema: \(error)")
            throw ExitCode(2)
        }
    }

    /// Runs `body` with a started client on a migrated schema that holds no pending messages.
    func withDatabase<T: Sendable>(_ body: (PostgresClient) async throws -> T) async throws -> T {
        try await DatabaseProbe.check(settings.database, logger: logger)
        let client = PostgresClient(configuration: settings.database.clientConfiguration(), backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await Migrator(schema: schema).migrate(client: client, logger: logger)
            let pending = try await client.scalar("SELECT count(*) FROM \(schema.rawValue).messages", logger: logger)
            guard pending == 0 else {
                throw LoadtestError(
                    "schema \(schema.rawValue) holds \(pending) pending messages; use a fresh --schema or drain it first")
            }
            return try await body(client)
        }
    }

    /// The environment of a relay process: the database and broker of this run, nothing else of ours.
    func relayEnvironment() -> [String: String] {
        var relay = environment.filter { !$0.key.hasPrefix("OUTBOX_") }
        relay["OUTBOX_DATABASE_URL"] = environment["OUTBOX_DATABASE_URL"]
        relay["OUTBOX_KAFKA_BROKERS"] = brokers
        relay["OUTBOX_SCHEMA"] = schema.rawValue
        relay["OUTBOX_LOG_LEVEL"] = "notice"
        if let properties = environment["OUTBOX_KAFKA_PROPERTIES"] { relay["OUTBOX_KAFKA_PROPERTIES"] = properties }
        // Chosen per run to compare the walks side by side (BENCHMARKS.md, "Read walk").
        if let walk = environment["OUTBOX_READ_WALK"] { relay["OUTBOX_READ_WALK"] = walk }
        // Large-payload runs (BENCHMARKS.md, "Bounded memory"): the byte limit under test, and
        // envelopes above librdkafka's default 1,000,000 B.
        for name in ["OUTBOX_BATCH_MAX_BYTES", "OUTBOX_MAX_MESSAGE_BYTES"] {
            if let value = environment[name] { relay[name] = value }
        }
        return relay
    }

    var producerConfiguration: KafkaProducerConfiguration {
        KafkaProducerConfiguration(
            bootstrapServers: brokers, properties: settings.kafkaProperties, messageTimeout: settings.kafkaMessageTimeout)
    }

    /// The postmaster of the run's database when it runs on this machine (its CPU is counted):
    /// the parent of this client's backend, if that is a local `postgres` process.
    func localPostmaster(_ client: PostgresClient) async throws -> pid_t? {
        guard ["127.0.0.1", "localhost", "::1"].contains(settings.database.host) else { return nil }
        let backend = pid_t(try await client.scalar("SELECT pg_backend_pid()", logger: logger))
        func isPostgres(_ pid: pid_t) -> Bool {
            (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.hasPrefix("postgres") == true
        }
        guard isPostgres(backend), let parent = ProcessCPU.stat(backend)?.parent, isPostgres(parent) else { return nil }
        return parent
    }

    /// Writes report.json, report.md and report.html and prints the Markdown summary.
    func write(_ report: RunReport) throws {
        let json = JSONEncoder()
        json.outputFormatting = [.prettyPrinted, .sortedKeys]
        try json.encode(report).write(to: directory.appendingPathComponent("report.json"))
        let markdown = report.markdown
        try Data(markdown.utf8).write(to: directory.appendingPathComponent("report.md"))
        let html = HTMLReport(report: report)
        try Data(html.html.utf8).write(to: directory.appendingPathComponent("report.html"))
        let charts = directory.appendingPathComponent("charts")
        try FileManager.default.createDirectory(at: charts, withIntermediateDirectories: true)
        for chart in html.charts {
            // Standalone files need the styles the page gives inline charts.
            let svg = chart.svg.replacingOccurrences(of: "role=\"img\"", with: "role=\"img\" style=\"background:#fff\"")
                .replacingOccurrences(of: "</svg>", with: "<style>\(HTMLReport.chartStyle)</style></svg>")
            try Data(svg.utf8).write(to: charts.appendingPathComponent("\(chart.name).svg"))
        }
        print(markdown)
        print("results: \(directory.path) (report.html, report.json, report.md, relay logs)")
    }

    static func machine() -> String {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let memory = Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824
        return String(format: "%@, %d cores, %.0f GiB", ProcessInfo.processInfo.hostName, cores, memory)
    }
}

extension PostgresClient {
    /// The first column of the first row as a whole number (0 when there is no row).
    func scalar(_ sql: String, logger: Logger) async throws -> Int64 {
        for try await value in try await query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(Int64.self) {
            return value
        }
        return 0
    }
}

/// Progress and errors for the person running the tool: stderr, so stdout carries only the summary.
enum Progress {
    static func line(_ text: String) {
        FileHandle.standardError.write(Data("\(text)\n".utf8))
    }
}

struct LoadtestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

