import Foundation
import Outbox
import OutboxRelay
import OutboxTestSupport
import Testing

/// The real `outbox-relay run` exporting over OTLP/HTTP to a collector stand-in on loopback
/// (``OTLPReceiver``), switched on by the standard `OTEL_*` variables alone: the send span of a
/// message enqueued with a `traceparent` arrives in that trace, with its batch, the claim and the
/// relay's resource; metrics arrive beside `/metrics`; the collector's credentials (and the
/// message's own headers) appear in no output; a protocol this build cannot export is refused
/// before the relay starts.
@Suite(.serialized) struct OTLPExportTests {
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let parentSpanID = "00f067aa0ba902b7"

    @Test func theBinarysSpansReachACollectorInTheEnqueuersTrace() async throws {
        let receiver = try await OTLPReceiver.start()
        defer { Task { await receiver.close() } }
        try await OutboxFixture.with { fixture in
            let ids = try await fixture.enqueue([
                OutboxMessage(
                    topic: fixture.topic, key: "order-1", payload: "paid",
                    headers: ["traceparent": "00-\(Self.traceID)-\(Self.parentSpanID)-01", "x-api-key": "app-secret-9f2"]),
                // A context the tracer cannot parse: logged without the carrier's values, and the
                // message gets a trace of its own.
                OutboxMessage(
                    topic: fixture.topic, key: "order-2", payload: "shipped",
                    headers: ["traceparent": "not-a-trace-context", "authorization": "Bearer app-secret-9f2"]),
            ])
            let relayID = TestServices.uniqueName("otlp")
            let result = try await ChildProcess.runRelay(
                ["run", "--stop-when-drained", "--relay-id", relayID, "--poll-interval", "50ms"],
                environment: ChildProcess.environment([
                    "OUTBOX_DATABASE_URL": TestServices.databaseURL, "OUTBOX_KAFKA_BROKERS": TestServices.brokers,
                    "OUTBOX_SCHEMA": fixture.schema.rawValue, "OUTBOX_LOG_LEVEL": "debug",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                    "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer otlp-secret-4c1",
                    "OTEL_LOG_LEVEL": "debug",  // the exporter's most talkative: still no secret
                    "OTEL_SERVICE_NAME": "orders-relay",
                    "OTEL_BSP_SCHEDULE_DELAY": "100",
                    "OTEL_METRICS_EXPORTER": "otlp", "OTEL_METRIC_EXPORT_INTERVAL": "200",
                ]))
            let output = result.stdout + result.stderr
            #expect(result.code == 0, "exit code; stderr: \(result.stderr.suffix(3000))")
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0)
            for secret in ["otlp-secret-4c1", "app-secret-9f2"] {
                #expect(!output.contains(secret), "a secret in the relay's output: \(secret)")
            }
            #expect(output.contains("exporting over OTLP"), "the relay says where its spans go")

            // Spans of the final batch are flushed as the relay stops; give the receiver a moment
            // for the last request in case the process exited while it was being read.
            var spans = try receiver.spans()
            for _ in 0..<50 where !spans.contains(where: { $0.name.hasPrefix("send ") && $0.attributes["outbox.id"] == "\(ids[1])" }) {
                try await Task.sleep(for: .milliseconds(100))
                spans = try receiver.spans()
            }
            let traces = receiver.requests.filter { $0.path == "/v1/traces" }
            #expect(!traces.isEmpty)
            #expect(traces.allSatisfy { $0.header("authorization") == "Bearer otlp-secret-4c1" }, "OTEL_EXPORTER_OTLP_HEADERS is sent")
            #expect(traces.allSatisfy { $0.header("content-type") == "application/x-protobuf" })

            let send = try #require(
                spans.first { $0.name == "send \(fixture.topic)" && $0.attributes["outbox.id"] == "\(ids[0])" },
                "the send span of the traced message among \(spans)")
            #expect(send.kind == .producer)
            #expect(send.traceID == Self.traceID && send.parentSpanID == Self.parentSpanID, "a child of the enqueuer's span: \(send)")
            #expect(send.attributes["messaging.system"] == "kafka")
            #expect(send.attributes["messaging.destination.name"] == fixture.topic)
            #expect(send.attributes["messaging.message.id"]?.hasSuffix("/\(ids[0])") == true)
            #expect(send.attributes["messaging.destination.partition.id"] != nil)
            #expect(send.attributes["outbox.outcome"] == "published")
            #expect(send.statusCode != 2)
            #expect(send.resource["service.name"] == "orders-relay", "OTEL_SERVICE_NAME: \(send.resource)")
            #expect(send.resource["service.instance.id"] == relayID)

            let untraced = try #require(spans.first { $0.name.hasPrefix("send ") && $0.attributes["outbox.id"] == "\(ids[1])" })
            #expect(untraced.parentSpanID.isEmpty && untraced.traceID != Self.traceID, "an unparsable context starts a trace: \(untraced)")

            let linked = Set(send.links.map(\.spanID))
            let batch = try #require(spans.first { $0.name == "outbox.batch" && linked.contains($0.spanID) }, "the batch the send links to")
            let steps = Set(spans.filter { $0.parentSpanID == batch.spanID && $0.traceID == batch.traceID }.map(\.name))
            #expect(steps.isSuperset(of: ["outbox.read", "outbox.settle"]), "\(steps)")
            #expect(spans.contains { $0.name == "outbox.claim" && $0.attributes["outbox.lanes.count"] == "256" })

            // The trace as it arrived, for the record (the README's example is this shape).
            let trace = ([send] + spans.filter { $0.traceID == batch.traceID }).map { span in
                "\(span.name) kind=\(span.kind) trace=\(span.traceID) span=\(span.spanID) parent=\(span.parentSpanID.isEmpty ? "-" : span.parentSpanID) links=\(span.links.map(\.spanID)) attributes=\(span.attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")) resource=\(span.resource.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
            }
            Measurements.record("otlp-trace", "\n" + trace.joined(separator: "\n"))

            let metrics = try receiver.requests.filter { $0.path == "/v1/metrics" }.flatMap { try ExportedSpan.metricNames(request: $0.body) }
            #expect(metrics.contains(RelayMetrics.Name.published), "OTEL_METRICS_EXPORTER=otlp: \(Set(metrics).sorted())")
        }
    }

    /// The tracing backend must never hold the relay back: with the collector refusing
    /// connections, or accepting them and never answering (a blackholed link), the relay publishes
    /// everything and stops on SIGTERM; the spans are dropped.
    @Test(arguments: [FaultProxy.Mode.refuse, .blackhole])
    func aCollectorThatIsDownOrSilentNeverHoldsTheRelayBack(_ mode: FaultProxy.Mode) async throws {
        let receiver = try await OTLPReceiver.start()
        let proxy = try await FaultProxy.start(upstreamPort: receiver.port)
        defer { Task { await receiver.close() } }
        proxy.set(mode)
        try await OutboxFixture.with { fixture in
            let relay = try ChildProcess(
                ChildProcess.relayBinary, ["run", "--relay-id", TestServices.uniqueName("otlp_down"), "--poll-interval", "50ms"],
                environment: ChildProcess.environment([
                    "OUTBOX_DATABASE_URL": TestServices.databaseURL, "OUTBOX_KAFKA_BROKERS": TestServices.brokers,
                    "OUTBOX_SCHEMA": fixture.schema.rawValue, "OUTBOX_KAFKA_MESSAGE_TIMEOUT": "5s",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(proxy.port)", "OTEL_BSP_SCHEDULE_DELAY": "100",
                    "OTEL_METRICS_EXPORTER": "otlp", "OTEL_METRIC_EXPORT_INTERVAL": "200",
                ]))
            let count = 300
            _ = try await fixture.enqueue((0..<count).map { OutboxMessage(topic: fixture.topic, key: "k-\($0 % 30)", payload: "m-\($0)") })
            let started = ContinuousClock.now
            var pending = Int64(count)
            while pending > 0 && ContinuousClock.now - started < .seconds(20) {
                try await Task.sleep(for: .milliseconds(100))
                pending = try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self)
            }
            #expect(pending == 0, "\(pending) left after 20 s with the collector \(mode); stderr: \(relay.standardError.suffix(2000))")
            // More of them while the exporter is failing or waiting: still published at once.
            _ = try await fixture.enqueue((0..<count).map { OutboxMessage(topic: fixture.topic, key: "k-\($0 % 30)", payload: "n-\($0)") })
            let second = ContinuousClock.now
            while pending == 0 && ContinuousClock.now - second < .milliseconds(100) { try await Task.sleep(for: .milliseconds(10)) }
            repeat {
                try await Task.sleep(for: .milliseconds(100))
                pending = try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self)
            } while pending > 0 && ContinuousClock.now - second < .seconds(10)
            #expect(pending == 0, "the second burst waited: \(pending) left")
            relay.signal(SIGTERM)
            // The stop may wait for the exporter's last flush to time out (a silent collector),
            // never for ever: the service group bounds the graceful stop.
            let code = await relay.wait(timeout: .seconds(90))
            #expect(code == 0, "exit code; stderr: \(relay.standardError.suffix(2000))")
            #expect(try await fixture.readTopic().count == 2 * count)
        }
        _ = receiver
    }

    @Test func whatThisBuildCannotExportIsRefusedBeforeTheRelayStarts() async throws {
        try await OutboxFixture.with { fixture in
            _ = try await fixture.enqueue([OutboxMessage(topic: fixture.topic, key: "k", payload: "stays")])
            for (variable, value, hint) in [
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "http/protobuf"), ("OTEL_TRACES_EXPORTER", "zipkin", "otlp"),
            ] {
                let result = try await ChildProcess.runRelay(
                    ["run", "--stop-when-drained"],
                    environment: ChildProcess.environment([
                        "OUTBOX_DATABASE_URL": TestServices.databaseURL, "OUTBOX_KAFKA_BROKERS": TestServices.brokers,
                        "OUTBOX_SCHEMA": fixture.schema.rawValue,
                        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", variable: value,
                    ]), timeout: .seconds(30))
                #expect(result.code == 2, "a configuration error, not a crash: \(result.stderr.suffix(2000))")
                #expect(result.stderr.contains(variable) && result.stderr.contains(hint), "\(result.stderr.suffix(2000))")
            }
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 1, "nothing was published")
        }
    }
}
