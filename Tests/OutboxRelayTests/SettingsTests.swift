import Outbox
import PostgresNIO
import Testing
@testable import OutboxRelay

@Suite struct SettingsTests {
    let base = ["OUTBOX_DATABASE_URL": "postgres://relay:s3cr3t-PASSWORD@db.internal:6432/app?sslmode=require"]

    func settings(_ extra: [String: String]) throws -> RelaySettings {
        try RelaySettings(values: base.merging(extra) { $1 }, defaultRelayID: "test-relay")
    }

    func error(_ extra: [String: String], base: [String: String]? = nil) -> ConfigurationError? {
        do {
            _ = try RelaySettings(values: (base ?? self.base).merging(extra) { $1 }, defaultRelayID: "x")
            return nil
        } catch {
            return error
        }
    }

    @Test func defaultsAreSane() throws {
        let s = try settings([:])
        #expect(s.database.host == "db.internal")
        #expect(s.database.port == 6432)
        #expect(s.database.username == "relay")
        #expect(s.database.password == "s3cr3t-PASSWORD")
        #expect(s.database.tlsMode == .require)
        #expect(s.relay.schema == .default)
        #expect(s.relay.batchSize == 1000)
        #expect(s.relay.leaseTTL == .seconds(15))
        #expect(s.relay.renewInterval == .seconds(5))
        #expect(s.relay.relayID == "test-relay")
        #expect(s.kafkaBrokers == nil)
    }

    @Test func valuesAreParsed() throws {
        let s = try settings([
            "OUTBOX_BATCH_SIZE": "250", "OUTBOX_LEASE_TTL": "1m", "OUTBOX_RENEW_INTERVAL": "10s",
            "OUTBOX_KAFKA_BROKERS": "a:9092,b:9093", "OUTBOX_SCHEMA": "billing_outbox",
            "OUTBOX_KAFKA_PROPERTIES": "security.protocol=SASL_SSL, sasl.password=a=b\nlinger.ms=2",
            "OUTBOX_RETRY_BASE": "250ms", "OUTBOX_MAX_ATTEMPTS": "3",
        ])
        #expect(s.relay.batchSize == 250)
        #expect(s.relay.leaseTTL == .seconds(60))
        #expect(s.relay.renewInterval == .seconds(10))
        #expect(s.kafkaBrokers == "a:9092,b:9093")
        #expect(s.relay.schema.rawValue == "billing_outbox")
        #expect(s.kafkaProperties == ["security.protocol": "SASL_SSL", "sasl.password": "a=b", "linger.ms": "2"])
        #expect(s.relay.retry.baseDelay == .milliseconds(250))
        #expect(s.relay.retry.maximumAttempts == 3)
    }

    @Test(arguments: [
        (["OUTBOX_BATCH_SIZE": "0"], "OUTBOX_BATCH_SIZE"),
        (["OUTBOX_BATCH_SIZE": "lots"], "OUTBOX_BATCH_SIZE"),
        (["OUTBOX_LEASE_TTL": "15"], "OUTBOX_LEASE_TTL"),
        (["OUTBOX_LEASE_TTL": "1s"], "OUTBOX_LEASE_TTL"),
        (["OUTBOX_LEASE_TTL": "10s", "OUTBOX_RENEW_INTERVAL": "5s"], "OUTBOX_RENEW_INTERVAL"),
        (["OUTBOX_SCHEMA": "outbox; DROP TABLE users"], "OUTBOX_SCHEMA"),
        (["OUTBOX_SCHEMA": "Outbox"], "OUTBOX_SCHEMA"),
        (["OUTBOX_KAFKA_BROKERS": "localhost"], "OUTBOX_KAFKA_BROKERS"),
        (["OUTBOX_KAFKA_PROPERTIES": "linger.ms"], "OUTBOX_KAFKA_PROPERTIES"),
        (["OUTBOX_RETRY_BASE": "2m", "OUTBOX_RETRY_MAX": "1m"], "OUTBOX_RETRY_BASE"),
        (["OUTBOX_LOG_LEVEL": "loud"], "OUTBOX_LOG_LEVEL"),
        (["OUTBOX_DATABASE_STATEMENT_TIMEOUT": "0s"], "OUTBOX_DATABASE_STATEMENT_TIMEOUT"),
        (["OUTBOX_DATABASE_STATEMENT_TIMEOUT": "5s", "OUTBOX_DATABASE_LOCK_TIMEOUT": "6s"], "OUTBOX_DATABASE_LOCK_TIMEOUT"),
        (["OUTBOX_STALL_LIMIT": "forever"], "OUTBOX_STALL_LIMIT"),
        (["OUTBOX_DATABASE_URL": "mysql://u@h/db"], "OUTBOX_DATABASE_URL"),
        (["OUTBOX_DATABASE_URL": "postgres://h/db"], "OUTBOX_DATABASE_URL"),
        (["OUTBOX_DATABASE_URL": "postgres://u:pw@h:5432/db?sslmode=sometimes"], "OUTBOX_DATABASE_URL"),
    ])
    func invalidValuesNameTheirSetting(extra: [String: String], setting: String) {
        let failure = error(extra)
        #expect(failure?.setting == setting)
        #expect(failure?.description.contains(Setting.flag(forEnvironmentName: setting)) == true)
    }

    @Test func databaseSessionBoundsAndStallLimitDefaultsFollowTheTimeouts() throws {
        let defaults = try settings([:])
        #expect(defaults.databaseSession.statementTimeout == .seconds(30))
        #expect(defaults.databaseSession.lockTimeout == .seconds(10))
        #expect(defaults.relay.statementDeadline == .seconds(35), "the client waits a little longer than the server")
        // The longest legitimate step is a 30 s delivery (+5 s librdkafka slack) or a 35 s statement.
        #expect(defaults.relay.pipelineStallLimit == .seconds(50))
        let set = try settings([
            "OUTBOX_DATABASE_STATEMENT_TIMEOUT": "2m", "OUTBOX_DATABASE_LOCK_TIMEOUT": "1s", "OUTBOX_KAFKA_MESSAGE_TIMEOUT": "10s",
        ])
        #expect(set.relay.statementDeadline == .seconds(125))
        #expect(set.relay.pipelineStallLimit == .seconds(140), "a slow statement must not look like a stall")
        #expect(try settings(["OUTBOX_STALL_LIMIT": "7s"]).relay.pipelineStallLimit == .seconds(7))
        // An embedder who sets nothing gets a limit derived from its producer's delivery timeout.
        let embedded = RelayConfiguration(relayID: "x")
        #expect(embedded.pipelineStallLimit == nil)
        #expect(embedded.resolvedStallLimit(messageTimeout: .seconds(120)) == .seconds(140))
        let short = try settings(["OUTBOX_DATABASE_STATEMENT_TIMEOUT": "4s"])
        #expect(short.databaseSession.lockTimeout == .seconds(4), "the default lock timeout never exceeds the statement timeout")
    }

    @Test func sessionStartupParametersCarryEveryBoundInPostgresUnits() {
        let parameters = Dictionary(uniqueKeysWithValues: DatabaseSessionBounds(statementTimeout: .seconds(30), lockTimeout: .milliseconds(1500)).startupParameters)
        #expect(parameters["statement_timeout"] == "30000")
        #expect(parameters["lock_timeout"] == "1500")
        #expect(parameters["idle_in_transaction_session_timeout"] == "60000")
        #expect(parameters["tcp_keepalives_idle"] == "10")
        #expect(parameters["tcp_keepalives_interval"] == "5")
        #expect(parameters["tcp_keepalives_count"] == "3")
        #expect(parameters["tcp_user_timeout"] == "20000")
        #expect(parameters["client_connection_check_interval"] == "2000")
        #expect(parameters["application_name"] == "outbox-relay")
        let client = DatabaseSessionBounds().applied(to: try! DatabaseURL("postgres://u@h/db").clientConfiguration())
        #expect(client.options.keepAliveBehavior == nil, "the pool's undeadlined ping is off")
        #expect(client.options.additionalStartupParameters.contains { $0.0 == "lock_timeout" })
    }

    @Test func missingDatabaseURLSaysHowToSetIt() {
        let failure = error([:], base: [:])
        #expect(failure?.setting == "OUTBOX_DATABASE_URL")
        #expect(failure?.description.contains("not set") == true)
    }

    @Test func passwordsNeverAppearInDescriptionsOrErrors() throws {
        let s = try settings([:])
        #expect(!s.database.description.contains("s3cr3t-PASSWORD"))
        #expect(s.database.description.contains("***"))
        let failure = error(["OUTBOX_DATABASE_URL": "postgres://u:s3cr3t-PASSWORD@h/db?sslmode=bogus"])
        #expect(failure != nil)
        #expect(failure?.description.contains("s3cr3t-PASSWORD") == false)
    }

    @Test func flagsAreDerivedFromVariableNames() {
        #expect(Setting.flag(forEnvironmentName: "OUTBOX_BATCH_SIZE") == "--batch-size")
        #expect(Setting.flag(forEnvironmentName: "OUTBOX_DATABASE_URL") == "--database-url")
    }

    @Test func durations() {
        #expect(DurationParser.parse("250ms") == .milliseconds(250))
        #expect(DurationParser.parse("1m30s") == .seconds(90))
        #expect(DurationParser.parse("1.5s") == .milliseconds(1500))
        #expect(DurationParser.parse("2h") == .seconds(7200))
        #expect(DurationParser.parse("15") == nil)
        #expect(DurationParser.parse("s") == nil)
        #expect(DurationParser.parse("5 parsecs") == nil)
        #expect(DurationParser.parse("") == nil)
    }

    @Test func schemaNamesRejectInjection() {
        #expect(SchemaName.isValid("outbox"))
        #expect(SchemaName.isValid("_o2"))
        #expect(!SchemaName.isValid(""))
        #expect(!SchemaName.isValid("2outbox"))
        #expect(!SchemaName.isValid("out\"box"))
        #expect(!SchemaName.isValid("outbox;drop"))
        #expect(!SchemaName.isValid(String(repeating: "a", count: 64)))
    }
}

@Suite struct SQLScriptTests {
    @Test func splitsAtTopLevelSemicolonsOnly() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE t (a text DEFAULT ';');
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $fn$
            BEGIN RETURN 1; END
            $fn$;
            SELECT "we;ird", $$x;y$$
            """
        let statements = SQLScript.statements(script)
        #expect(statements.count == 3)
        #expect(statements[0].hasSuffix("CREATE TABLE t (a text DEFAULT ';')"))
        #expect(statements[1].contains("BEGIN RETURN 1; END"))
        #expect(statements[2] == "SELECT \"we;ird\", $$x;y$$")
    }

    @Test func theInitialMigrationSplitsIntoWholeStatements() {
        let statements = SQLScript.statements(Migration.v1Initial.render(schema: "outbox"))
        #expect(statements.count >= 10)
        #expect(statements.contains { $0.contains("CREATE FUNCTION outbox.enqueue(") && $0.hasSuffix("$fn$") })
    }
}

@Suite struct DurationUnitTests {
    @Test func daysAndWeeks() {
        #expect(DurationParser.parse("7d") == .seconds(7 * 86_400))
        #expect(DurationParser.parse("2w") == .seconds(14 * 86_400))
        #expect(DurationParser.parse("1d12h") == .seconds(36 * 3_600))
        #expect(DurationParser.parse("3x") == nil)
    }
}
