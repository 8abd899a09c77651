import Foundation
import OutboxTestSupport
import Testing

/// The real binary with configuration files: `config check`, precedence, every kind of bad
/// configuration (exit 2, one line), secrets never printed, JSON logs.
@Suite(.serialized) struct ConfigCommandLineTests {
    static let secret = "S3cr3t-Hunter2-Pw"
    let database = TestServices.databaseURL
    let brokers = TestServices.brokers

    /// The test database URL with a password added (the local cluster trusts loopback, so the
    /// password is sent nowhere that checks it, but the relay holds and must hide it).
    var databaseWithPassword: String {
        database.replacingOccurrences(of: "://postgres@", with: "://postgres:\(Self.secret)@")
    }

    func file(_ name: String, _ contents: String) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-cli-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent(name).path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func configCheckShowsEachValueAndItsSource() async throws {
        let path = try file("relay.yaml", """
            database:
              url: \(databaseWithPassword)
            kafka:
              brokers: [\(brokers)]
              properties:
                sasl.password: \(Self.secret)
                linger.ms: 3
            batch:
              size: 100
            lease:
              ttl: 30s
            poll:
              interval: 2s
            """)
        let result = try await ChildProcess.runRelay(
            ["config", "check", "--config", path, "--poll-interval", "3s"],
            environment: ChildProcess.environment(["OUTBOX_LEASE_TTL": "45s"]))
        #expect(result.code == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        func row(_ key: String) -> String? { lines.first { $0.hasSuffix(" " + key) } }
        #expect(row("batch.size")?.contains("100") == true && row("batch.size")?.contains(" file ") == true, "\(result.stdout)")
        #expect(row("lease.ttl")?.contains("45s") == true && row("lease.ttl")?.contains(" env ") == true, "\(result.stdout)")
        #expect(row("poll.interval")?.contains("3s") == true && row("poll.interval")?.contains(" flag ") == true, "\(result.stdout)")
        #expect(row("retry.max")?.contains("60s") == true && row("retry.max")?.contains(" default ") == true, "\(result.stdout)")
        #expect(row("kafka.properties.sasl.password")?.contains("[redacted]") == true, "\(result.stdout)")
        #expect(!result.stdout.contains(Self.secret) && !result.stderr.contains(Self.secret))

        let json = try await ChildProcess.runRelay(
            ["config", "check", "--config", path, "--poll-interval", "3s", "--json"],
            environment: ChildProcess.environment(["OUTBOX_LEASE_TTL": "45s"]))
        #expect(json.code == 0, "\(json.stderr)")
        let document = try #require(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let rows = try #require(document["settings"] as? [[String: String]])
        let byKey = Dictionary(rows.map { ($0["key"] ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byKey["batch.size"]?["source"] == "file")
        #expect(byKey["lease.ttl"]?["source"] == "env")
        #expect(byKey["poll.interval"]?["source"] == "flag")
        #expect(byKey["poll.interval"]?["value"] == "3s")
        #expect(document["configFile"] as? String == path)
        #expect(!json.stdout.contains(Self.secret) && !json.stderr.contains(Self.secret))
    }

    @Test func jsonFilesAndTheConfigVariable() async throws {
        let path = try file("relay.json", #"{"database": {"url": "\#(database)"}, "batch": {"size": 250}, "log": {"format": "json"}}"#)
        let result = try await ChildProcess.runRelay(
            ["config", "check", "--json"], environment: ChildProcess.environment(["OUTBOX_CONFIG": path]))
        #expect(result.code == 0, "\(result.stderr)")
        #expect(result.stdout.contains("\"value\" : \"250\""), "\(result.stdout)")
    }

    @Test func badConfigurationOfEachKindExitsWithTwoAndOneLine() async throws {
        let good = "database:\n  url: \(database)\nkafka:\n  brokers: \(brokers)\n"
        let cases: [(file: (String, String)?, arguments: [String], environment: [String: String], mention: String)] = [
            (("relay.yaml", good + "batch:\n  size: lots\n"), [], [:], "key batch.size in"),
            (("relay.yaml", good + "batch:\n  size: 0\n"), [], [:], "from 1 to 10000"),
            (("relay.yaml", good), ["--batch-size", "20000"], [:], "flag --batch-size"),
            (("relay.yaml", good), [], ["OUTBOX_LEASE_TTL": "fifteen"], "environment variable OUTBOX_LEASE_TTL"),
            (("relay.yaml", good + "lease:\n  ttl: 10s\n  renew_interval: 4s\n"), [], [:], "third of the lease TTL"),
            (("relay.yaml", good + "retry:\n  base: 2m\n  max: 1m\n"), [], [:], "OUTBOX_RETRY_BASE"),
            (("relay.yaml", good), ["--database-url", "mysql://u:\(Self.secret)@h/db"], [:], "postgres://"),
            (("relay.yaml", good), ["--kafka-brokers", "localhost"], [:], "not host:port"),
            (("relay.yaml", good + "batch:\n  sise: 5\n"), [], [:], "did you mean batch.size?"),
            (("relay.yaml", good + "kafka: [oops\n"), [], [:], "not valid YAML"),
            (("relay.json", "{\"batch\": "), [], [:], "not valid JSON"),
            (("relay.ini", "batch.size=5"), [], [:], "unsupported file type"),
            (nil, ["--config", "/nonexistent/relay.yaml"], [:], "/nonexistent/relay.yaml: no such file"),
            (("relay.yaml", good), ["--log-format", "xml"], [:], "OUTBOX_LOG_FORMAT"),
        ]
        for (file, arguments, environment, mention) in cases {
            var configArguments: [String] = []
            if let file { configArguments = ["--config", try self.file(file.0, file.1)] }
            for command in [["config", "check"], ["run"]] {
                let result = try await ChildProcess.runRelay(
                    command + configArguments + arguments, environment: ChildProcess.environment(environment))
                #expect(result.code == 2, "\(command) \(arguments) \(file?.1 ?? ""): \(result.stderr)")
                #expect(result.stderr.contains(mention), "\(command) \(arguments): \(result.stderr)")
                #expect(result.stderr.split(separator: "\n").count == 1, "one clear line: \(result.stderr)")
                #expect(result.stdout.isEmpty, "\(result.stdout)")
                #expect(!result.stderr.contains(Self.secret))
            }
        }
    }

    @Test func secretsAppearInNoOutput() async throws {
        let unreachable = "postgres://relay:\(Self.secret)@127.0.0.1:1/outbox?sslmode=disable"
        let yaml = try file("relay.yaml", """
            database:
              url: \(unreachable)
            kafka:
              brokers: \(brokers)
              properties:
                sasl.password: \(Self.secret)
                ssl.key.password: \(Self.secret)
            """)
        let variants: [(arguments: [String], environment: [String: String])] = [
            (["--config", yaml], [:]),
            ([], ["OUTBOX_DATABASE_URL": unreachable, "OUTBOX_KAFKA_BROKERS": brokers,
                  "OUTBOX_KAFKA_PROPERTIES": "sasl.password=\(Self.secret)"]),
            (["--database-url", unreachable, "--kafka-brokers", brokers, "--kafka-property", "sasl.password=\(Self.secret)"], [:]),
        ]
        for (arguments, environment) in variants {
            for command in [["config", "check"], ["config", "check", "--json"], ["status"], ["status", "--log-format", "json"],
                            ["config", "check", "--batch-size", "0"], ["run", "--lease-ttl", "1s"]] {
                let result = try await ChildProcess.runRelay(command + arguments, environment: ChildProcess.environment(environment))
                #expect(result.code != nil)
                #expect(!result.stdout.contains(Self.secret) && !result.stderr.contains(Self.secret),
                        "\(command) \(arguments): \(result.stdout) \(result.stderr)")
            }
        }
    }

    @Test func jsonLogsParseAndCarryMetadataButNoSecrets() async throws {
        let schema = TestServices.uniqueName("json_logs")
        let path = try file("relay.yaml", """
            database:
              url: \(databaseWithPassword)
              schema: \(schema)
            kafka:
              brokers: \(brokers)
              properties:
                sasl.password: \(Self.secret)
            log:
              format: json
              level: debug
            http:
              address: "off"
            """)
        let migrate = try await ChildProcess.runRelay(["migrate", "--config", path], environment: ChildProcess.environment([:]))
        #expect(migrate.code == 0, "\(migrate.stderr)")
        let run = try await ChildProcess.runRelay(
            ["run", "--config", path, "--stop-when-drained"], environment: ChildProcess.environment([:]), timeout: .seconds(90))
        #expect(run.code == 0, "\(run.stderr)")
        let lines = (migrate.stderr + run.stderr).split(separator: "\n").map(String.init)
        #expect(lines.count >= 3, "\(lines)")
        var sawMetadata = false
        for line in lines {
            let object = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
            #expect(object["timestamp"] is String && object["level"] is String && object["message"] is String, "\(line)")
            #expect(object["label"] is String && object["source"] is String, "\(line)")
            if let metadata = object["metadata"] as? [String: Any], metadata["schema"] as? String == schema { sawMetadata = true }
        }
        #expect(sawMetadata, "\(lines)")
        for text in [migrate.stdout, migrate.stderr, run.stdout, run.stderr] { #expect(!text.contains(Self.secret)) }
        _ = try await ChildProcess.runRelay(
            ["status", "--config", path], environment: ChildProcess.environment([:]))
        try await dropSchema(schema)
    }

    func dropSchema(_ schema: String) async throws {
        let drop = Process()
        drop.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        drop.arguments = ["psql", database, "-q", "-c", "DROP SCHEMA IF EXISTS \(schema) CASCADE"]
        drop.standardOutput = FileHandle.nullDevice
        drop.standardError = FileHandle.nullDevice
        try? drop.run()
        drop.waitUntilExit()
    }
}
