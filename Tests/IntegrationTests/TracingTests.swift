import Foundation
import InMemoryTracing
import Logging
import Outbox
import Testing
import Tracing

@testable import OutboxRelay

/// The relay's spans with an in-memory tracer, against the real PostgreSQL and broker: the
/// application injects its span's context into a message's headers (as its tracer would write a
/// `traceparent`); the relay's send span of that message is a child of it, with the messaging
/// attributes, linked to its batch; a dead-lettered message's span has an error status.
@Suite(.serialized) struct TracingTests {
    struct HeadersInjector: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
    }

    @Test func aMessagesSendSpanIsInItsEnqueuersTraceAndADeadLetterIsAnError() async throws {
        try await OutboxFixture.with { fixture in
            let tracer = InMemoryTracer()
            let placeOrder = tracer.startSpan("place order", context: .topLevel, ofKind: .server)
            var headers: [String: String] = [:]
            tracer.inject(placeOrder.context, into: &headers, using: HeadersInjector())
            placeOrder.end()
            let ids = try await fixture.enqueue([
                OutboxMessage(topic: fixture.topic, key: "order-1", payload: "paid", headers: headers),
                OutboxMessage(topic: "bad topic!", key: "order-2", payload: "poison", headers: headers),
                OutboxMessage(topic: fixture.topic, key: "order-3", payload: "untraced"),
            ])
            let relay = RelayService(
                configuration: fixture.relayConfiguration(), client: fixture.client,
                kafka: KafkaProducerConfiguration(bootstrapServers: TestServices.brokers, messageTimeout: .seconds(10)),
                identity: RelayIdentity(host: "test", pid: 1, version: "test"), logger: fixture.logger, tracer: tracer)
            try await relay.run()

            let spans = tracer.finishedSpans
            let sends = Dictionary(
                spans.filter { $0.kind == .producer }.map { ($0.attributes["outbox.id"]?.toSpanAttribute(), $0) }
                    .compactMap { key, span in Self.int(key).map { ($0, span) } }) { first, _ in first }
            let published = try #require(sends[Int(ids[0])], "a span for the published message: \(spans.map(\.operationName))")
            #expect(published.operationName == "send \(fixture.topic)")
            #expect(published.traceID == placeOrder.traceID && published.parentSpanID == placeOrder.spanID, "a child of the enqueuer's span")
            #expect(published.attributes["messaging.system"]?.toSpanAttribute() == .string("kafka"))
            #expect(published.attributes["messaging.destination.name"]?.toSpanAttribute() == .string(fixture.topic))
            #expect(published.attributes["messaging.message.id"]?.toSpanAttribute() == .string("test/\(ids[0])"))
            #expect(published.attributes["messaging.kafka.message.key"] == nil, "keys are often customer ids: not exported")
            #expect(published.attributes["messaging.batch.message_count"]?.toSpanAttribute() == .int64(3))
            #expect(published.attributes["outbox.outcome"]?.toSpanAttribute() == .string("published"))
            let partition = published.attributes["messaging.destination.partition.id"]?.toSpanAttribute()
            #expect(partition != nil, "the partition from the delivery report")
            #expect(published.status == nil)

            let dead = try #require(sends[Int(ids[1])])
            #expect(dead.traceID == placeOrder.traceID)
            #expect(dead.attributes["outbox.outcome"]?.toSpanAttribute() == .string("dead_lettered"))
            #expect(dead.status?.code == .error && dead.status?.message?.hasPrefix("invalid_topic") == true, "\(String(describing: dead.status))")

            let untraced = try #require(sends[Int(ids[2])])
            #expect(untraced.traceID != placeOrder.traceID && untraced.parentSpanID == nil, "no context: a trace of its own")

            // The batch: its read and settle are its children; every message span links to it.
            let batch = try #require(spans.first { $0.operationName == "outbox.batch" })
            #expect(spans.contains { $0.operationName == "outbox.read" && $0.parentSpanID == batch.spanID })
            #expect(spans.contains { $0.operationName == "outbox.settle" && $0.parentSpanID == batch.spanID })
            #expect(published.links.first?.context.inMemorySpanContext?.spanID == batch.spanID)
            // Its lanes were claimed once, in one statement.
            let claims = spans.filter { $0.operationName == "outbox.claim" }
            #expect(claims.count == 1)
            #expect(claims.first.flatMap { Self.int($0.attributes["outbox.lanes.count"]?.toSpanAttribute()) } == 256)
            // An idle relay polling an empty outbox makes no spans: one batch in all.
            #expect(spans.filter { $0.operationName == "outbox.batch" }.count == 1)
        }
    }

    /// Records of a slow partition (librdkafka's mock cluster: its leader answers after 4 s) are
    /// left in flight as stragglers while the rest of their batch is settled; each still gets its
    /// send span once its report is in, marked as a straggler and linked to the batch that sent it.
    @Test func stragglersGetTheirSpansWhenTheyAreSettled() async throws {
        try await OutboxFixture.with { fixture in
            let cluster = try MockKafkaCluster(brokers: 3)
            try cluster.createTopic(fixture.topic, partitions: 4, replicationFactor: 3)
            for (partition, broker) in [(0, 3), (1, 1), (2, 2), (3, 1)] as [(Int32, Int32)] {
                try cluster.setLeader(topic: fixture.topic, partition: partition, broker: broker)
            }
            // The producer id and metadata on a healthy cluster first (another relay run).
            _ = try await fixture.enqueue([OutboxMessage(topic: fixture.topic, key: "warm", payload: "warm")])
            try await fixture.drain(fixture.relayConfiguration(), brokers: cluster.bootstrapServers)
            try cluster.setRoundTrip(broker: 3, .seconds(4))
            let ids = try await fixture.enqueue((0..<200).map { OutboxMessage(topic: fixture.topic, key: "key-\($0 % 40)", payload: "m-\($0)") })

            let tracer = InMemoryTracer()
            let relay = RelayService(
                configuration: fixture.relayConfiguration(), client: fixture.client,
                kafka: KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers, messageTimeout: .seconds(10)),
                identity: RelayIdentity(host: "test", pid: 1, version: "test"), logger: fixture.logger, tracer: tracer)
            try await relay.run()

            let sends = tracer.finishedSpans.filter { $0.kind == .producer }
            let published = sends.filter { $0.attributes["outbox.outcome"]?.toSpanAttribute() == .string("published") }
            let spanned = Set(published.compactMap { Self.int($0.attributes["outbox.id"]?.toSpanAttribute()) })
            #expect(spanned.isSuperset(of: ids.map { Int($0) }), "every published message has a span: \(ids.count - spanned.intersection(ids.map { Int($0) }).count) without")
            let stragglers = published.filter { $0.attributes["outbox.straggler"]?.toSpanAttribute() == .bool(true) }
            #expect(!stragglers.isEmpty, "partition 0's records were settled as stragglers")
            #expect(stragglers.allSatisfy { $0.attributes["messaging.destination.partition.id"]?.toSpanAttribute() == .string("0") })
            let batches = Set(tracer.finishedSpans.filter { $0.operationName == "outbox.batch" }.compactMap { $0.context.inMemorySpanContext?.spanID })
            #expect(stragglers.allSatisfy { span in span.links.contains { batches.contains($0.context.inMemorySpanContext?.spanID ?? "") } })
        }
    }

    static func int(_ attribute: SpanAttribute?) -> Int? {
        switch attribute {
        case .int64(let value)?: Int(value)
        case .int32(let value)?: Int(value)
        default: nil
        }
    }
}
