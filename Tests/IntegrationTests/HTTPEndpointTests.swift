import Foundation
import Outbox
import OutboxRelay
import OutboxTestSupport
import Testing

/// `/healthz`, `/metrics` and `/readyz` scraped from the real binary, and `/readyz` following a
/// broker outage: not ready while the broker is down, ready again once it is back; the lease
/// counters show renewals and no losses.
@Suite(.serialized) struct HTTPEndpointTests {
    @Test func endpointsAnswerAndReadinessFollowsTheBroker() async throws {
        try await OutboxFixture.with { fixture in
            let port = try HTTPGet.freePort()
            let relay = try ChildProcess(
                ChildProcess.relayBinary,
                [
                    "run", "--http-address", "127.0.0.1:\(port)", "--relay-id", "http-test",
                    "--kafka-message-timeout", "3s", "--poll-interval", "200ms",
                ],
                environment: ChildProcess.environment([
                    "OUTBOX_DATABASE_URL": TestServices.databaseURL, "OUTBOX_KAFKA_BROKERS": TestServices.brokers,
                    "OUTBOX_SCHEMA": fixture.schema.rawValue, "OUTBOX_LOG_LEVEL": "info",
                ]))
            do {
                try await scrapeAndFollowTheBroker(fixture: fixture, port: port, relay: relay)
            } catch {
                relay.signal(SIGTERM)
                _ = await relay.wait(timeout: .seconds(20))
                throw error
            }
            relay.signal(SIGTERM)
            let code = await relay.wait(timeout: .seconds(30))
            #expect(code == 0, "exit code; stderr: \(relay.standardError.suffix(2000))")
        }
    }

    private func scrapeAndFollowTheBroker(fixture: OutboxFixture, port: Int, relay: ChildProcess) async throws {
        let context = { "relay stderr: \(relay.standardError.suffix(3000))" }
        let healthz = try await eventually("healthz answers", context: context) {
            try? HTTPGet.get(port: port, path: "/healthz")
        }
        #expect(healthz.status == 200)
        #expect(healthz.body == "ok\n")

        let published = 40
        _ = try await fixture.enqueue((0..<published).map { OutboxMessage(topic: fixture.topic, key: "k-\($0 % 8)", payload: "m-\($0)") })
        try await eventually("the outbox drains", context: context) {
            try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0 ? true : nil
        }

        let metrics = try HTTPGet.get(port: port, path: "/metrics")
        #expect(metrics.status == 200)
        #expect((HTTPGet.sample(RelayMetrics.Name.published, in: metrics.body) ?? 0) >= Double(published), "\(metrics.body)")
        for name in RelayMetrics.Name.alwaysPresent {
            #expect(metrics.body.contains(name), "\(name) missing from /metrics")
        }
        #expect(metrics.body.contains(#"outbox_relay_dead_lettered_total{reason="attempts_exhausted"} 0"#))
        #expect(HTTPGet.sample(RelayMetrics.Name.brokerUp, in: metrics.body) == 1)
        #expect(HTTPGet.sample(RelayMetrics.Name.databaseUp, in: metrics.body) == 1)
        let lanes = try await fixture.scalar("SELECT count(*) FROM {schema}.lanes", as: Int64.self)
        #expect(HTTPGet.sample(RelayMetrics.Name.lanesOwned, in: metrics.body) == Double(lanes), "the only relay holds every lane")

        let ready = try await eventually("readyz is 200", context: context) {
            try? HTTPGet.get(port: port, path: "/readyz").status == 200 ? true : nil
        }
        #expect(ready)

        try TestServices.services("stop-broker")
        do {
            _ = try await fixture.enqueue([OutboxMessage(topic: fixture.topic, key: "outage", payload: "waits")])
            let notReady = try await eventually("readyz turns 503 during the outage", timeout: .seconds(60), context: context) {
                let response = try? HTTPGet.get(port: port, path: "/readyz")
                return response?.status == 503 ? response : nil
            }
            #expect(notReady.body.contains("broker unreachable since"), "\(notReady.body)")
            let duringOutage = try HTTPGet.get(port: port, path: "/metrics").body
            #expect(HTTPGet.sample(RelayMetrics.Name.brokerUp, in: duringOutage) == 0)
            // The monitor samples every few seconds; the stuck message shows in the backlog gauge.
            let pendingLine = "\(RelayMetrics.Name.pendingMessages){topic=\"\(fixture.topic)\"} 1"
            try await eventually("the backlog gauge shows the waiting message", timeout: .seconds(20), context: context) {
                (try? HTTPGet.get(port: port, path: "/metrics").body.contains(pendingLine)) == true ? true : nil
            }
        } catch {
            try? TestServices.services("start-broker")
            throw error
        }
        try TestServices.services("start-broker")

        let readyAgain = try await eventually("readyz is 200 again after the broker returned", timeout: .seconds(90), context: context) {
            let response = try? HTTPGet.get(port: port, path: "/readyz")
            return response?.status == 200 ? response : nil
        }
        #expect(readyAgain.body.hasPrefix("ok"))
        try await eventually("the waiting message is published", context: context) {
            try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0 ? true : nil
        }

        // Lease metrics: the only relay claimed every lane, renews them every renewal interval (5 s
        // by default, passed long ago) and, with nobody competing, lost none.
        let leases = try await eventually("a lease renewal is counted", context: context) {
            let body = try? HTTPGet.get(port: port, path: "/metrics").body
            return body.flatMap { (HTTPGet.sample(RelayMetrics.Name.leaseRenewals, in: $0) ?? 0) > 0 ? $0 : nil }
        }
        #expect((HTTPGet.sample(RelayMetrics.Name.lanesAcquired, in: leases) ?? 0) >= Double(lanes), "\(leases)")
        #expect(HTTPGet.sample(RelayMetrics.Name.lanesLost, in: leases) == 0, "\(leases)")
    }

    /// The value of an unlabelled sample line `name value` in Prometheus text.
    /// Polls `probe` every 250 ms until it returns a value; fails after `timeout`.
    @discardableResult
    private func eventually<T>(
        _ what: String, timeout: Duration = .seconds(30), context: () -> String, _ probe: () async throws -> T?
    ) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let value = try await probe() { return value }
            try await Task.sleep(for: .milliseconds(250))
        }
        Issue.record("timed out waiting until \(what); \(context())")
        throw TimedOut(what: what)
    }

    struct TimedOut: Error { var what: String }
}
