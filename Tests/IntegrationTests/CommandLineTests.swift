import Foundation
import Outbox
import OutboxEnvelope
import OutboxRelay
import PostgresNIO
import OutboxTestSupport
import Testing

/// The real `outbox-relay` binary: configuration errors, unreachable services, and a graceful
/// SIGTERM in the middle of a drain.
@Suite(.serialized) struct CommandLineTests {
    let database = TestServices.databaseURL
    let brokers = TestServices.brokers

    @Test func badSettingsNameTheSettingAndExitWithTwo() async throws {
        let cases: [([String], [String: String], String)] = [
            (["run"], ["OUTBOX_KAFKA_BROKERS": brokers], "OUTBOX_DATABASE_URL"),
            (["run"], ["OUTBOX_DATABASE_URL": database, "OUTBOX_KAFKA_BROKERS": brokers, "OUTBOX_BATCH_SIZE": "0"], "--batch-size"),
            (["run", "--lease-ttl", "10s", "--renew-interval", "6s"], ["OUTBOX_DATABASE_URL": database, "OUTBOX_KAFKA_BROKERS": brokers], "OUTBOX_RENEW_INTERVAL"),
            (["status", "--schema", "x; DROP TABLE y"], ["OUTBOX_DATABASE_URL": database], "OUTBOX_SCHEMA"),
            (["run"], ["OUTBOX_DATABASE_URL": database], "OUTBOX_KAFKA_BROKERS"),
            (["run", "--kafka-property", "no.such.property=1"], ["OUTBOX_DATABASE_URL": database, "OUTBOX_KAFKA_BROKERS": brokers], "no.such.property"),
        ]
        for (arguments, settings, mention) in cases {
            let result = try await ChildProcess.runRelay(arguments, environment: ChildProcess.environment(settings))
            #expect(result.code == 2, "\(arguments) \(settings): \(result.stderr)")
            #expect(result.stderr.contains(mention), "\(arguments): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count <= 2, "one clear line: \(result.stderr)")
        }
    }

    @Test func theConsoleRefusesANetworkAddressWithoutAStrongTokenAndNeverPrintsOne() async throws {
        let cases: [([String], [String: String], String)] = [
            (["console", "--listen", "0.0.0.0:9465"], ["OUTBOX_DATABASE_URL": database], "OUTBOX_CONSOLE_TOKEN"),
            (["console"], ["OUTBOX_DATABASE_URL": database, "OUTBOX_CONSOLE_ADDRESS": "10.1.2.3:9465"], "not loopback"),
            (["console", "--listen", "0.0.0.0:9465"], ["OUTBOX_DATABASE_URL": database, "OUTBOX_CONSOLE_TOKEN": "tiny-secret"], "shorter than 16"),
            (["console", "--listen", "nowhere"], ["OUTBOX_DATABASE_URL": database], "--listen"),
            (["console", "--refresh", "0s"], ["OUTBOX_DATABASE_URL": database], "--refresh"),
        ]
        for (arguments, settings, mention) in cases {
            let result = try await ChildProcess.runRelay(arguments, environment: ChildProcess.environment(settings))
            #expect(result.code == 2, "\(arguments) \(settings): \(result.stderr)")
            #expect(result.stderr.contains(mention), "\(arguments): \(result.stderr)")
            #expect(!result.stderr.contains("tiny-secret") && !result.stdout.contains("tiny-secret"), "the token is never printed")
        }
    }

    @Test func passwordsAreNeverPrinted() async throws {
        let secret = "Sup3r-S3cret-Pa55"
        for arguments in [["status"], ["migrate"], ["run"]] {
            let result = try await ChildProcess.runRelay(
                arguments,
                environment: ChildProcess.environment([
                    "OUTBOX_DATABASE_URL": "postgres://relay:\(secret)@127.0.0.1:1/outbox?sslmode=disable",
                    "OUTBOX_KAFKA_BROKERS": brokers,
                    "OUTBOX_KAFKA_PROPERTIES": "sasl.password=\(secret),bogus.property=1",
                ]))
            #expect(result.code != 0)
            #expect(!result.stdout.contains(secret) && !result.stderr.contains(secret), "\(arguments): \(result.stderr)")
        }
    }

    @Test func unreachableDatabaseSaysSo() async throws {
        let result = try await ChildProcess.runRelay(
            ["status"],
            environment: ChildProcess.environment(["OUTBOX_DATABASE_URL": "postgres://postgres@127.0.0.1:1/outbox?sslmode=disable"]))
        #expect(result.code == 1)
        #expect(result.stderr.contains("cannot reach the database"), "\(result.stderr)")
        #expect(result.stderr.contains("OUTBOX_DATABASE_URL"))
    }

    @Test func unmigratedSchemaSaysToMigrate() async throws {
        let result = try await ChildProcess.runRelay(
            ["run"],
            environment: ChildProcess.environment([
                "OUTBOX_DATABASE_URL": database, "OUTBOX_KAFKA_BROKERS": brokers,
                "OUTBOX_SCHEMA": TestServices.uniqueName("never_migrated"),
            ]))
        #expect(result.code == 1)
        #expect(result.stderr.contains("outbox-relay migrate"), "\(result.stderr)")
    }

    @Test func sigtermMidDrainFlushesAcksReleasesAndExitsZero() async throws {
        try await OutboxFixture.with { fixture in
            var ids: [Int64] = []
            for chunk in 0..<20 {
                ids += try await fixture.enqueue((0..<1000).map {
                    OutboxMessage(topic: fixture.topic, key: "k-\(($0 + chunk) % 200)", payload: "m-\(chunk)-\($0)")
                })
            }
            let relay = try ChildProcess(
                ChildProcess.relayBinary, ["run", "--batch-size", "200", "--relay-id", "sigterm-test"],
                environment: ChildProcess.environment([
                    "OUTBOX_DATABASE_URL": database, "OUTBOX_KAFKA_BROKERS": brokers,
                    "OUTBOX_SCHEMA": fixture.schema.rawValue, "OUTBOX_LOG_LEVEL": "info",
                ]))
            // Let it get going, then stop it mid-drain.
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                let pending = try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self)
                if pending < 19_000 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            relay.signal(SIGTERM)
            let code = await relay.wait(timeout: .seconds(30))
            #expect(code == 0, "exit code; stderr: \(relay.standardError.suffix(2000))")
            #expect(relay.standardError.contains("released lanes"))
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.lanes WHERE owner IS NOT NULL", as: Int64.self) == 0)
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.relays", as: Int64.self) == 0)

            // Nothing lost and no duplicate: what is on the topic and what is still pending add up
            // to exactly what was enqueued (the in-flight batch was acked before exiting).
            let published = try await fixture.readTopic().map { try Envelope(serializedBytes: $0.value).sequence }
            var pending: [Int64] = []
            let rows = try await fixture.client.query(
                PostgresQuery(unsafeSQL: "SELECT id FROM \(fixture.schema.rawValue).messages"), logger: fixture.logger)
            for try await id in rows.decode(Int64.self) { pending.append(id) }
            #expect(!published.isEmpty && !pending.isEmpty, "stopped mid-drain: \(published.count) published")
            #expect(Set(published).count == published.count, "no duplicates")
            #expect(Set(published).isDisjoint(with: pending), "acked rows are gone from the outbox")
            #expect(Set(published).union(pending) == Set(ids), "nothing lost")
        }
    }
}
