import Foundation
import Testing
@testable import OutboxRelay

/// Layering (file < env < flag), file formats, provenance and file errors of ``SettingsLoader``.
@Suite struct SettingsLoaderTests {
    static let secret = "S3cr3t-Hunter2-Pw"
    let database = "postgres://relay:\(Self.secret)@db.internal:6432/app?sslmode=require"

    /// A fresh folder holding one configuration file.
    func file(_ name: String, _ contents: String) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent(name).path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func load(
        file path: String? = nil, env: [String: String] = [:], flags: [String: String] = [:], properties: [String] = []
    ) async throws(ConfigurationError) -> EffectiveSettings {
        try await SettingsLoader.load(
            SettingsInput(flags: flags, kafkaPropertyFlags: properties, environment: env, configPath: path), defaultRelayID: "test-relay")
    }

    func failure(file path: String? = nil, env: [String: String] = [:], flags: [String: String] = [:]) async -> ConfigurationError? {
        do {
            _ = try await load(file: path, env: env, flags: flags)
            return nil
        } catch {
            return error
        }
    }

    static let yaml = """
        # outbox-relay configuration
        database:
          url: postgres://relay:\(secret)@db.internal:6432/app?sslmode=require
          schema: billing
        kafka:
          brokers: [a:9092, b:9093]
          message_timeout: 20s
          properties:
            security.protocol: SASL_SSL
            sasl.password: \(secret)
            linger.ms: 2
        batch:
          size: 100
        lease:
          ttl: 30s
        log:
          level: debug
        """

    static let json = """
        {
          "database": {"url": "postgres://relay:\(secret)@db.internal:6432/app?sslmode=require", "schema": "billing"},
          "kafka": {
            "brokers": "a:9092,b:9093",
            "message_timeout": "20s",
            "properties": {"security.protocol": "SASL_SSL", "sasl.password": "\(secret)", "linger.ms": 2}
          },
          "batch": {"size": 100},
          "lease": {"ttl": "30s"},
          "log": {"level": "debug"}
        }
        """

    @Test(arguments: [("relay.yaml", yaml), ("relay.yml", yaml), ("relay.json", json)])
    func fileThenEnvironmentThenFlags(name: String, contents: String) async throws {
        let path = try file(name, contents)
        let effective = try await load(
            file: path,
            env: ["OUTBOX_LEASE_TTL": "45s", "OUTBOX_LOG_LEVEL": "warning", "OUTBOX_KAFKA_PROPERTIES": "linger.ms=7"],
            flags: ["OUTBOX_LOG_LEVEL": "error"], properties: ["acks=all"])
        let s = effective.settings
        #expect(s.relay.batchSize == 100)
        #expect(s.relay.schema.rawValue == "billing")
        #expect(s.kafkaBrokers == "a:9092,b:9093")
        #expect(s.kafkaMessageTimeout == .seconds(20))
        #expect(s.relay.leaseTTL == .seconds(45))
        #expect(s.logLevel == "error")
        #expect(s.database.password == Self.secret)
        #expect(s.kafkaProperties == ["security.protocol": "SASL_SSL", "sasl.password": Self.secret, "linger.ms": "7", "acks": "all"])
        #expect(effective.configFile == path)
        #expect(effective.origins["OUTBOX_BATCH_SIZE"] == SettingOrigin(source: .file, name: "batch.size", path: path))
        #expect(effective.origins["OUTBOX_LEASE_TTL"] == SettingOrigin(source: .env, name: "OUTBOX_LEASE_TTL"))
        #expect(effective.origins["OUTBOX_LOG_LEVEL"] == SettingOrigin(source: .flag, name: "--log-level"))
        #expect(effective.origins["OUTBOX_POLL_INTERVAL"] == nil)
        #expect(effective.propertyOrigins["security.protocol"]?.source == .file)
        #expect(effective.propertyOrigins["linger.ms"]?.source == .env)
        #expect(effective.propertyOrigins["acks"]?.source == .flag)

        let rows = Dictionary(effective.rows.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(rows["batch.size"]?.source == .file)
        #expect(rows["lease.ttl"]?.source == .env)
        #expect(rows["log.level"]?.source == .flag)
        #expect(rows["poll.interval"]?.source == .default)
        #expect(rows["poll.interval"]?.value == "1s")
        #expect(rows["kafka.properties.sasl.password"]?.value == "sasl.password=[redacted]")
        for output in [effective.table(), effective.json(), "\(effective)", String(reflecting: effective), "\(s)", String(reflecting: s)] {
            #expect(!output.contains(Self.secret))
            #expect(output.contains("relay:***@db.internal"))
        }
    }

    @Test func flagsWinOverEnvironmentWithoutAFile() async throws {
        let effective = try await load(
            env: ["OUTBOX_DATABASE_URL": database, "OUTBOX_BATCH_SIZE": "10", "OUTBOX_SOURCE": "env-source"],
            flags: ["OUTBOX_BATCH_SIZE": "20"])
        #expect(effective.settings.relay.batchSize == 20)
        #expect(effective.settings.relay.source == "env-source")
        #expect(effective.origins["OUTBOX_BATCH_SIZE"]?.source == .flag)
        #expect(effective.origins["OUTBOX_SOURCE"]?.source == .env)
        #expect(effective.configFile == nil)
    }

    @Test func configPathFromTheEnvironmentAndFlagWins() async throws {
        let fromEnv = try file("a.yaml", "batch:\n  size: 11\ndatabase:\n  url: \(database)\n")
        let fromFlag = try file("b.json", #"{"batch.size": 22, "database": {"url": "\#(database)"}}"#)
        #expect(try await load(env: ["OUTBOX_CONFIG": fromEnv]).settings.relay.batchSize == 11)
        #expect(try await load(file: fromFlag, env: ["OUTBOX_CONFIG": fromEnv]).settings.relay.batchSize == 22)
    }

    @Test func badValuesInTheFileNameTheKeyAndTheFile() async throws {
        let path = try file("relay.yaml", "database:\n  url: \(database)\nbatch:\n  size: lots\n")
        let error = try #require(await failure(file: path))
        #expect(error.setting == "OUTBOX_BATCH_SIZE")
        #expect(error.origin == SettingOrigin(source: .file, name: "batch.size", path: path))
        #expect(error.description.contains("key batch.size in \(path)"))
        #expect(error.description.contains("--batch-size"))
    }

    @Test func relationsAcrossLayersNameTheOffendingValue() async throws {
        let path = try file("relay.yaml", "database:\n  url: \(database)\nlease:\n  ttl: 10s\n")
        let error = try #require(await failure(file: path, env: ["OUTBOX_RENEW_INTERVAL": "5s"]))
        #expect(error.setting == "OUTBOX_RENEW_INTERVAL")
        #expect(error.origin?.source == .env)
        #expect(error.description.contains("third of the lease TTL"))
    }

    @Test func environmentErrorsSayEnvironment() async {
        let error = await failure(env: ["OUTBOX_DATABASE_URL": database, "OUTBOX_LEASE_TTL": "15"])
        #expect(error?.origin == SettingOrigin(source: .env, name: "OUTBOX_LEASE_TTL"))
        #expect(error?.description.contains("environment variable OUTBOX_LEASE_TTL") == true)
    }

    @Test func unknownKeysAreRejectedWithTheClosestName() async throws {
        let typo = try file("relay.yaml", "database:\n  url: \(database)\nbatch:\n  sise: 10\n")
        let error = try #require(await failure(file: typo))
        #expect(error.setting == "OUTBOX_CONFIG")
        #expect(error.description.contains("unknown key"))
        #expect(error.description.contains("batch.sise"))
        #expect(error.description.contains("did you mean batch.size?"))

        let variableName = try file("relay.json", #"{"OUTBOX_BATCH_SIZE": 10}"#)
        #expect(try #require(await failure(file: variableName)).description.contains("write batch.size"))

        let scalarProperties = try file("relay.yaml", "kafka:\n  properties: linger.ms=5\n")
        #expect(try #require(await failure(file: scalarProperties)).description.contains("must be a map"))
    }

    @Test(arguments: [
        ("relay.toml", "batch = 1", "unsupported file type"),
        ("relay.yaml", "database: [unclosed\n  url: postgres://u:\(secret)@h/db\n", "not valid YAML"),
        ("relay.json", #"{"database": {"url": "postgres://u:\#(secret)@h/db""#, "not valid JSON"),
        ("relay.yaml", "- just\n- a list\n", "not valid YAML"),
    ])
    func brokenFilesSayWhatIsWrong(name: String, contents: String, expected: String) async throws {
        let path = try file(name, contents)
        let error = try #require(await failure(file: path))
        #expect(error.setting == "OUTBOX_CONFIG")
        #expect(error.description.contains(path))
        #expect(error.description.contains(expected), "\(error)")
        #expect(!error.description.contains(Self.secret), "\(error)")
        #expect(!error.description.contains("\n"))
    }

    @Test func missingFilesAndFoldersSaySo() async throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-\(UUID().uuidString).yaml").path
        let error = try #require(await failure(file: missing))
        #expect(error.description.contains("\(missing): no such file"))
        #expect(error.origin == SettingOrigin(source: .flag, name: "--config"))

        let folder = URL(fileURLWithPath: try file("x.yaml", "")).deletingLastPathComponent().appendingPathComponent("d.yaml").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        #expect(try #require(await failure(file: folder)).description.contains("is a directory"))
    }

    @Test func anEmptyFileIsNoSettings() async throws {
        for (name, contents) in [("empty.yaml", "\n"), ("comments.yml", "# batch:\n#   size: 10\n"), ("empty.json", "")] {
            let path = try file(name, contents)
            let effective = try await load(file: path, env: ["OUTBOX_DATABASE_URL": database])
            #expect(effective.settings.relay.batchSize == 1000)
            #expect(effective.configFile == path)
        }
    }

    @Test func kafkaPropertiesMayNotOverrideTheirOwnSettings() async throws {
        let path = try file("relay.yaml", "database:\n  url: \(database)\nkafka:\n  properties:\n    message.timeout.ms: 5000\n")
        let error = try #require(await failure(file: path))
        #expect(error.setting == "OUTBOX_KAFKA_PROPERTIES")
        #expect(error.origin == SettingOrigin(source: .file, name: "kafka.properties.message.timeout.ms", path: path))
        #expect(error.description.contains("kafka.message_timeout"))
        let fromEnvironment = await failure(env: ["OUTBOX_DATABASE_URL": database, "OUTBOX_KAFKA_PROPERTIES": "bootstrap.servers=a:1"])
        #expect(fromEnvironment?.description.contains("kafka.brokers") == true)
        #expect(fromEnvironment?.origin?.source == .env)
    }

    @Test func logFormatIsValidated() async throws {
        #expect(try await load(env: ["OUTBOX_DATABASE_URL": database]).settings.logFormat == .text)
        #expect(try await load(env: ["OUTBOX_DATABASE_URL": database], flags: ["OUTBOX_LOG_FORMAT": "json"]).settings.logFormat == .json)
        let error = await failure(env: ["OUTBOX_DATABASE_URL": database, "OUTBOX_LOG_FORMAT": "xml"])
        #expect(error?.setting == "OUTBOX_LOG_FORMAT")
    }

    @Test func closestNames() {
        #expect(ClosestName.suggestion(for: "batch.sise", among: ["batch.size", "lease.ttl"]) == "batch.size")
        #expect(ClosestName.suggestion(for: "kafka.broker", among: ["kafka.brokers", "lease.ttl"]) == "kafka.brokers")
        #expect(ClosestName.suggestion(for: "completely.different", among: ["batch.size"]) == nil)
    }
}
