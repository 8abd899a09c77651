import Foundation
import Outbox

/// All settings of `outbox-relay`, parsed from one flat map of `OUTBOX_*` names to text.
///
/// The command line builds that map from the environment and overlays its flags (flags win), so
/// parsing and validation are one pure function that tests can call with any map.
public struct RelaySettings: Sendable {
    public var database: DatabaseURL
    public var kafkaBrokers: String?
    public var kafkaProperties: [String: String]
    public var kafkaMessageTimeout: Duration
    public var relay: RelayConfiguration
    public var logLevel: String
    /// How log lines look on stderr.
    public var logFormat: LogFormat
    /// Where `/healthz`, `/readyz` and `/metrics` listen during `run`; nil when turned off.
    public var httpAddress: HTTPAddress?
    /// The limits the server enforces on every session of `run` (timeouts, keepalive).
    public var databaseSession: DatabaseSessionBounds

    /// Every setting with its file key, default and meaning: the one catalogue behind `--help`
    /// texts, `config check`, unknown-key detection in configuration files and the reference table
    /// in docs/configuration.md (a test keeps that table in step with this list).
    public static let defaults: [(name: String, fileKey: String, value: String, meaning: String)] = [
        ("OUTBOX_DATABASE_URL", "database.url", "(required)", "postgres://user[:password]@host[:port]/db[?sslmode=disable|prefer|require|verify-full]"),
        ("OUTBOX_DATABASE_STATEMENT_TIMEOUT", "database.statement_timeout", "30s", "server-side statement_timeout of the relay's sessions, 1s-1h; the relay abandons a statement 5s later (a dead link)"),
        ("OUTBOX_DATABASE_LOCK_TIMEOUT", "database.lock_timeout", "10s", "server-side lock_timeout of the relay's sessions, 100ms-1h and at most the statement timeout"),
        ("OUTBOX_SCHEMA", "database.schema", "outbox", "schema holding the outbox tables ([a-z_][a-z0-9_]*, checked)"),
        ("OUTBOX_KAFKA_BROKERS", "kafka.brokers", "(required for run, peek)", "bootstrap servers, host:port[,host:port] (a list in a file)"),
        ("OUTBOX_KAFKA_PROPERTIES", "kafka.properties", "", "extra librdkafka properties: name=value entries separated by newlines or commas (env; a comma starts an entry only before name=, \\, is a literal comma, \"…\" quotes a value), one per --kafka-property (flag, verbatim), a map of name: value (file)"),
        ("OUTBOX_KAFKA_MESSAGE_TIMEOUT", "kafka.message_timeout", "30s", "how long the relay waits for delivery reports before giving up on a batch (purged, retried after the outage), 1s-1h"),
        ("OUTBOX_RELAY_ID", "relay.id", "host-pid-random", "this relay's unique name, at most 200 bytes"),
        ("OUTBOX_SOURCE", "relay.source", "the outbox's (outbox)", "envelope source and id prefix; recorded by the first relay, every relay must use the same"),
        ("OUTBOX_BATCH_SIZE", "batch.size", "1000", "messages per batch, 1-10000"),
        ("OUTBOX_BATCH_MAX_BYTES", "batch.max_bytes", "16MiB", "payload and key bytes a batch read may return (a batch ends at the row that reaches it; a larger row is a batch of its own), 64KiB-1GiB; bytes, or with KiB, MiB or GiB"),
        ("OUTBOX_LEASE_TTL", "lease.ttl", "15s", "lane lease lifetime, 2s-10m"),
        ("OUTBOX_RENEW_INTERVAL", "lease.renew_interval", "5s", "lease renewal period, 100ms-200s and at most a third of the lease TTL"),
        ("OUTBOX_POLL_INTERVAL", "poll.interval", "1s", "idle poll period, 10ms-60s (NOTIFY wakes relays sooner)"),
        ("OUTBOX_READ_WALK", "read.walk", "auto", "how a batch read walks the held lanes: auto (by the share of lanes held), id-order or per-lane (benchmarks, diagnosis)"),
        ("OUTBOX_MAX_MESSAGE_BYTES", "message.max_bytes", "1000000", "largest encoded envelope, 1024-1073741824; larger messages are dead-lettered"),
        ("OUTBOX_MAX_ATTEMPTS", "retry.max_attempts", "10", "attempts before a retriable failure is dead-lettered, 1-1000"),
        ("OUTBOX_RETRY_BASE", "retry.base", "500ms", "first retry delay bound (doubles per attempt, full jitter), at most retry.max"),
        ("OUTBOX_RETRY_MAX", "retry.max", "60s", "largest retry delay"),
        ("OUTBOX_STALL_LIMIT", "relay.stall_limit", "(message timeout + 20s)", "silence of the batch loop after which the relay hands its lanes back, fails /healthz and exits with status 3, 1s-2h; default: the longest step (delivery or statement) + 20s"),
        ("OUTBOX_LOG_LEVEL", "log.level", "info", "trace, debug, info, notice, warning, error or critical"),
        ("OUTBOX_LOG_FORMAT", "log.format", "text", "text (human-readable) or json (one object per line on stderr)"),
        ("OUTBOX_HTTP_ADDRESS", "http.address", "127.0.0.1:9464", "host:port of /healthz, /readyz and /metrics (run only); off disables them"),
    ]

    public static let knownNames: Set<String> = Set(defaults.map(\.name))

    public init(values: [String: String], defaultRelayID: @autoclosure () -> String = RelaySettings.generatedRelayID()) throws(ConfigurationError) {
        func value(_ name: String) -> String? {
            guard let text = values[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        func integer(_ name: String, default fallback: Int, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
            guard let text = value(name) else { return fallback }
            guard let number = Int(text), range.contains(number) else {
                throw ConfigurationError(
                    setting: name, problem: "\(String(reflecting: text)) is not a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return number
        }
        func duration(_ name: String, default fallback: Duration, in range: ClosedRange<Duration>) throws(ConfigurationError) -> Duration {
            guard let text = value(name) else { return fallback }
            guard let parsed = DurationParser.parse(text) else {
                throw ConfigurationError(setting: name, problem: "\(String(reflecting: text)) is not a duration; write it like 500ms, 15s or 2m")
            }
            guard range.contains(parsed) else {
                throw ConfigurationError(setting: name, problem: "\(text) is out of range; use \(range.lowerBound) to \(range.upperBound)")
            }
            return parsed
        }

        func byteSize(_ name: String, default fallback: Int, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
            guard let text = value(name) else { return fallback }
            guard let bytes = ByteSize.parse(text) else {
                throw ConfigurationError(setting: name, problem: "\(String(reflecting: text)) is not a size; write it in bytes or like 512KiB, 16MiB or 1GiB")
            }
            guard range.contains(bytes) else {
                throw ConfigurationError(
                    setting: name,
                    problem: "\(text) is out of range; use \(ByteSize.describe(range.lowerBound)) to \(ByteSize.describe(range.upperBound))")
            }
            return bytes
        }

        guard let url = value("OUTBOX_DATABASE_URL") else {
            throw ConfigurationError(
                setting: "OUTBOX_DATABASE_URL",
                problem: "not set; give the outbox database, e.g. postgres://postgres@127.0.0.1:5432/app (eval \"$(scripts/services env)\" sets it for the local services)")
        }
        database = try DatabaseURL(url)

        let schemaText = value("OUTBOX_SCHEMA") ?? "outbox"
        let schema: SchemaName
        do { schema = try SchemaName(schemaText) } catch {
            throw ConfigurationError(setting: "OUTBOX_SCHEMA", problem: error.description)
        }

        kafkaBrokers = value("OUTBOX_KAFKA_BROKERS")
        if let brokers = kafkaBrokers {
            for broker in brokers.split(separator: ",") {
                let parts = broker.trimmingCharacters(in: .whitespaces).split(separator: ":")
                guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else {
                    throw ConfigurationError(
                        setting: "OUTBOX_KAFKA_BROKERS",
                        problem: "\(String(reflecting: String(broker))) is not host:port; give a comma-separated list like 127.0.0.1:9092,broker2:9092")
                }
            }
        }
        kafkaProperties = try Self.parseProperties(value("OUTBOX_KAFKA_PROPERTIES"))
        try KafkaPropertyConflicts.check(kafkaProperties)
        kafkaMessageTimeout = try duration("OUTBOX_KAFKA_MESSAGE_TIMEOUT", default: .seconds(30), in: .seconds(1)...(.seconds(3600)))

        let leaseTTL = try duration("OUTBOX_LEASE_TTL", default: .seconds(15), in: .seconds(2)...(.seconds(600)))
        let renewInterval = try duration("OUTBOX_RENEW_INTERVAL", default: min(.seconds(5), leaseTTL / 3), in: .milliseconds(100)...(.seconds(200)))
        guard renewInterval * 3 <= leaseTTL else {
            throw ConfigurationError(
                setting: "OUTBOX_RENEW_INTERVAL",
                problem: "\(renewInterval) is more than a third of the lease TTL (\(leaseTTL)); a relay must get several chances to renew before its lease expires — lower it or raise OUTBOX_LEASE_TTL")
        }
        let retryBase = try duration("OUTBOX_RETRY_BASE", default: .milliseconds(500), in: .milliseconds(1)...(.seconds(3600)))
        let retryMax = try duration("OUTBOX_RETRY_MAX", default: .seconds(60), in: .milliseconds(1)...(.seconds(86400)))
        guard retryBase <= retryMax else {
            throw ConfigurationError(setting: "OUTBOX_RETRY_BASE", problem: "\(retryBase) is larger than OUTBOX_RETRY_MAX (\(retryMax))")
        }
        let statementTimeout = try duration("OUTBOX_DATABASE_STATEMENT_TIMEOUT", default: .seconds(30), in: .seconds(1)...(.seconds(3600)))
        let lockTimeout = try duration("OUTBOX_DATABASE_LOCK_TIMEOUT", default: min(.seconds(10), statementTimeout), in: .milliseconds(100)...(.seconds(3600)))
        guard lockTimeout <= statementTimeout else {
            throw ConfigurationError(
                setting: "OUTBOX_DATABASE_LOCK_TIMEOUT",
                problem: "\(lockTimeout) is longer than the statement timeout (\(statementTimeout)), which would cut every lock wait first — lower it or raise OUTBOX_DATABASE_STATEMENT_TIMEOUT")
        }
        databaseSession = DatabaseSessionBounds(statementTimeout: statementTimeout, lockTimeout: lockTimeout)
        let stallLimit = try duration(
            "OUTBOX_STALL_LIMIT",
            default: RelayConfiguration.stallLimit(messageTimeout: kafkaMessageTimeout, statementDeadline: databaseSession.clientDeadline),
            in: .seconds(1)...(.seconds(7200)))
        let source = value("OUTBOX_SOURCE")
        let relayID = value("OUTBOX_RELAY_ID") ?? defaultRelayID()
        guard relayID.utf8.count <= 200 else {
            throw ConfigurationError(setting: "OUTBOX_RELAY_ID", problem: "longer than 200 characters")
        }
        let walkText = value("OUTBOX_READ_WALK")?.lowercased() ?? "auto"
        guard let readWalk = ReadWalk(rawValue: walkText) else {
            throw ConfigurationError(setting: "OUTBOX_READ_WALK", problem: "\(String(reflecting: walkText)) is not auto, id-order or per-lane")
        }
        relay = RelayConfiguration(
            schema: schema,
            relayID: relayID,
            source: source,
            batchSize: try integer("OUTBOX_BATCH_SIZE", default: 1000, in: 1...10_000),
            batchMaxBytes: try byteSize("OUTBOX_BATCH_MAX_BYTES", default: RelayConfiguration.defaultBatchMaxBytes, in: (64 << 10)...(1 << 30)),
            leaseTTL: leaseTTL,
            renewInterval: renewInterval,
            pollInterval: try duration("OUTBOX_POLL_INTERVAL", default: .seconds(1), in: .milliseconds(10)...(.seconds(60))),
            maximumMessageBytes: try integer("OUTBOX_MAX_MESSAGE_BYTES", default: 1_000_000, in: 1024...(1 << 30)),
            retry: RetryPolicy(
                baseDelay: retryBase, maximumDelay: retryMax,
                maximumAttempts: try integer("OUTBOX_MAX_ATTEMPTS", default: 10, in: 1...1000)),
            pipelineStallLimit: stallLimit,
            statementDeadline: databaseSession.clientDeadline,
            readWalk: readWalk)
        let level = value("OUTBOX_LOG_LEVEL") ?? "info"
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else {
            throw ConfigurationError(setting: "OUTBOX_LOG_LEVEL", problem: "\(String(reflecting: level)) is not one of trace, debug, info, notice, warning, error, critical")
        }
        logLevel = level
        let format = value("OUTBOX_LOG_FORMAT")?.lowercased() ?? "text"
        guard let logFormat = LogFormat(rawValue: format) else {
            throw ConfigurationError(setting: "OUTBOX_LOG_FORMAT", problem: "\(String(reflecting: format)) is not text or json")
        }
        self.logFormat = logFormat

        let http = value("OUTBOX_HTTP_ADDRESS") ?? "127.0.0.1:9464"
        if http.lowercased() == "off" {
            httpAddress = nil
        } else if let address = HTTPAddress(parsing: http) {
            httpAddress = address
        } else {
            throw ConfigurationError(
                setting: "OUTBOX_HTTP_ADDRESS",
                problem: "\(String(reflecting: http)) is not host:port with a port from 1 to 65535 (e.g. 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464), nor off")
        }
    }

    /// The brokers, or the error `run` reports when they are missing.
    public func requireKafkaBrokers() throws(ConfigurationError) -> String {
        guard let kafkaBrokers else {
            throw ConfigurationError(
                setting: "OUTBOX_KAFKA_BROKERS",
                problem: "not set; give the bootstrap servers, e.g. 127.0.0.1:9092")
        }
        return kafkaBrokers
    }

    /// `name=value` entries separated by newlines or commas (see `KafkaPropertyList` for commas
    /// inside values, quotes and escapes); later entries win.
    static func parseProperties(_ text: String?) throws(ConfigurationError) -> [String: String] {
        guard let text else { return [:] }
        do {
            var properties: [String: String] = [:]
            for (name, value) in try KafkaPropertyList.parse(text) { properties[name] = value }
            return properties
        } catch {
            throw ConfigurationError(setting: "OUTBOX_KAFKA_PROPERTIES", problem: error.problem)
        }
    }

    /// Each `--kafka-property`, one `name=value` per flag, the value verbatim (commas included).
    static func parsePropertyFlags(_ flags: [String]) throws(ConfigurationError) -> [String: String] {
        var properties: [String: String] = [:]
        for flag in flags {
            do {
                let (name, value) = try KafkaPropertyList.parseFlag(flag)
                properties[name] = value
            } catch {
                throw ConfigurationError(setting: "OUTBOX_KAFKA_PROPERTIES", problem: error.problem)
            }
        }
        return properties
    }

    public static func generatedRelayID() -> String {
        let host = ProcessInfo.processInfo.hostName
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        return "\(host)-\(ProcessInfo.processInfo.processIdentifier)-\(suffix)"
    }
}
