import Foundation
import Logging
import NIOCore
import Outbox
import OutboxRelay
import PostgresNIO
import Testing

/// The real services the integration tests talk to, as `scripts/services env` describes them.
enum TestServices {
    static func require(_ name: String) -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            fatalError("\(name) is not set: run the tests with scripts/test (it starts the services and sets the environment)")
        }
        return value
    }

    static var databaseURL: String { require("OUTBOX_DATABASE_URL") }
    static var brokers: String { require("OUTBOX_KAFKA_BROKERS") }

    static let logger: Logger = {
        var logger = Logger(label: "integration-test")
        logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return logger
    }()

    /// Runs `scripts/services <command>` (e.g. stop-broker, start-broker) and waits for it.
    ///
    /// posix_spawn + waitpid rather than Foundation's `Process`, whose `waitUntilExit` was seen
    /// to hang here once the script had left a daemon (the broker) running behind it.
    static func services(_ command: String) throws {
        let script = require("OUTBOX_SERVICES")
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(script), strdup(command), nil]
        defer { argv.forEach { free($0) } }
        let spawned = posix_spawn(&pid, script, nil, nil, argv, environ)
        guard spawned == 0 else { throw ServicesError(message: "cannot run \(script): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        guard status == 0 else {
            throw ServicesError(message: "scripts/services \(command) failed with wait status \(status)")
        }
    }

    struct ServicesError: Error { var message: String }

    static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)"
    }
}

/// A migrated outbox in a schema of its own, so tests never see each other's rows; dropped after.
struct OutboxFixture: Sendable {
    let client: PostgresClient
    let schema: SchemaName
    let topic: String
    let logger: Logger

    static func with(_ body: @Sendable (OutboxFixture) async throws -> Void) async throws {
        let settings = try RelaySettings(values: ["OUTBOX_DATABASE_URL": TestServices.databaseURL])
        var configuration = settings.database.clientConfiguration()
        configuration.options.maximumConnections = 12
        let logger = TestServices.logger
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let schema = try SchemaName(TestServices.uniqueName("test"))
            let fixture = OutboxFixture(
                client: client, schema: schema, topic: TestServices.uniqueName("topic").replacingOccurrences(of: "_", with: "-"),
                logger: logger)
            try await Migrator(schema: schema).migrate(client: client, logger: logger)
            do {
                try await body(fixture)
            } catch {
                try? await fixture.dropSchema()
                throw error
            }
            try await fixture.dropSchema()
        }
    }

    func dropSchema() async throws {
        try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema.rawValue) CASCADE"), logger: logger)
    }

    func relayConfiguration(_ adjust: (inout RelayConfiguration) -> Void = { _ in }) -> RelayConfiguration {
        var configuration = RelayConfiguration(
            schema: schema, relayID: TestServices.uniqueName("relay"), source: "test",
            batchSize: 500, leaseTTL: .seconds(6), renewInterval: .seconds(2), pollInterval: .milliseconds(200),
            stopWhenDrained: true)
        adjust(&configuration)
        return configuration
    }

    /// Runs one in-process relay until the outbox is empty (`stopWhenDrained`).
    func drain(
        _ configuration: RelayConfiguration, messageTimeout: Duration = .seconds(10), brokers: String = TestServices.brokers,
        kafkaProperties: [String: String] = [:]
    ) async throws {
        let relay = RelayService(
            configuration: configuration, client: client,
            kafka: KafkaProducerConfiguration(bootstrapServers: brokers, properties: kafkaProperties, messageTimeout: messageTimeout),
            identity: RelayIdentity(host: "test", pid: ProcessInfo.processInfo.processIdentifier, version: "test"),
            logger: logger)
        try await relay.run()
    }

    /// Runs one in-process relay (not stopping when the outbox is empty) until `done` answers true,
    /// polled every 200 ms, then cancels it.
    func runRelay(
        until done: @escaping @Sendable () async throws -> Bool, timeout: Duration = .seconds(120), walk: ReadWalk = .auto,
        pollInterval: Duration? = nil
    ) async throws {
        let relay = RelayService(
            configuration: relayConfiguration {
                $0.stopWhenDrained = false
                $0.readWalk = walk
                if let pollInterval { $0.pollInterval = pollInterval }
            }, client: client,
            kafka: KafkaProducerConfiguration(bootstrapServers: TestServices.brokers, messageTimeout: .seconds(10)),
            identity: RelayIdentity(host: "test", pid: ProcessInfo.processInfo.processIdentifier, version: "test"),
            logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await relay.run() }
            let deadline = ContinuousClock.now + timeout
            while try await !done() {
                guard ContinuousClock.now < deadline else { throw FixtureError(message: "the relay did not finish within \(timeout)") }
                try await Task.sleep(for: .milliseconds(200))
            }
            group.cancelAll()
            try? await group.waitForAll()
        }
    }

    func enqueue(_ messages: [OutboxMessage]) async throws -> [Int64] {
        try await client.withTransaction(logger: logger) { connection in
            try await OutboxWriter(schema: schema).enqueue(messages, on: connection, logger: logger)
        }
    }

    func scalar<T: PostgresDecodable & Sendable>(_ sql: String, as type: T.Type = T.self) async throws -> T {
        let rows = try await client.query(
            PostgresQuery(unsafeSQL: sql.replacingOccurrences(of: "{schema}", with: schema.rawValue)), logger: logger)
        for try await value in rows.decode(T.self) { return value }
        throw FixtureError(message: "no row for \(sql)")
    }

    struct FixtureError: Error { var message: String }

    func readTopic(_ topic: String? = nil, brokers: String = TestServices.brokers) async throws -> [ConsumedRecord] {
        try await KafkaTopicReader.readAll(
            topic: topic ?? self.topic, bootstrapServers: brokers, timeout: .seconds(60), logger: logger)
    }
}

/// Figures the fault tests observe (never assert), one line per scenario, in
/// `/tmp/fleet-measurements.txt`: what closing notes and the README quote.
enum Measurements {
    static func record(_ scenario: String, _ text: String) {
        let line = "\(Date()) [\(scenario)] \(text)\n"
        let path = "/tmp/fleet-measurements.txt"
        if let handle = FileHandle(forWritingAtPath: path) {
            handle.seekToEndOfFile()
            handle.write(Data(line.utf8))
            try? handle.close()
        } else {
            _ = FileManager.default.createFile(atPath: path, contents: Data(line.utf8))
        }
    }
}
