import Foundation
import NIOCore
import OutboxEnvelope
import Testing
@testable import OutboxRelay

@Suite struct EnvelopeBuilderTests {
    let builder = EnvelopeBuilder(source: "orders-db", maximumMessageBytes: 4096)

    func message(topic: String = "orders", payload: [UInt8] = Array("hello".utf8), headers: String = "{}") -> PendingMessage {
        PendingMessage(
            id: 42, topic: topic, key: ByteBuffer(string: "customer-7"), lane: 3, payload: ByteBuffer(bytes: payload),
            headersJSON: headers, contentType: "text/plain", type: "order.created",
            createdAt: Date(timeIntervalSince1970: 1_700_000_000.25), attempts: 2)
    }

    @Test func buildsTheEnvelopeAndRecord() throws {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        guard case .record(let record, let id) = builder.build(
            message(headers: #"{"traceparent":"\#(traceparent)","tenant":"acme","n":3}"#))
        else { Issue.record("expected a record"); return }
        #expect(id == "orders-db/42")
        #expect(record.topic == "orders")
        #expect(record.key == Array("customer-7".utf8))
        let envelope = try Envelope(serializedBytes: record.value)
        #expect(envelope.id == "orders-db/42")
        #expect(envelope.source == "orders-db")
        #expect(envelope.sequence == 42)
        #expect(envelope.attempt == 3)
        #expect(envelope.type == "order.created")
        #expect(envelope.contentType == "text/plain")
        #expect(envelope.key == Data("customer-7".utf8))
        #expect(envelope.payload == Data("hello".utf8))
        #expect(envelope.headers == ["traceparent": traceparent, "tenant": "acme", "n": "3"])
        #expect(envelope.traceparent == traceparent)
        #expect(envelope.topic == "orders")
        #expect(abs(envelope.time.date.timeIntervalSince1970 - 1_700_000_000.25) < 0.001)
        let headers = Dictionary(uniqueKeysWithValues: record.headers.map { ($0.name, String(decoding: $0.value, as: UTF8.self)) })
        #expect(headers["content-type"] == "application/x-protobuf")
        #expect(headers["outbox-id"] == "orders-db/42")
        #expect(headers["outbox-type"] == "order.created")
        #expect(headers["traceparent"] == traceparent)
    }

    @Test func oversizedMessagesArePoison() {
        guard case .poison(let reason, let error) = builder.build(message(payload: Array(repeating: 7, count: 5000))) else {
            Issue.record("expected poison"); return
        }
        #expect(reason == .messageTooLarge)
        #expect(error.contains("4096"))
    }

    @Test func invalidTopicsArePoison() {
        for topic in ["bad topic!", "", "..", String(repeating: "t", count: 250), "orders/eu"] {
            guard case .poison(let reason, _) = builder.build(message(topic: topic)) else {
                Issue.record("expected poison for \(topic)"); continue
            }
            #expect(reason == .invalidTopic)
        }
        for topic in ["orders", "a.b-c_D9", String(repeating: "t", count: 249)] {
            #expect(KafkaTopicName.problem(with: topic) == nil)
        }
    }

    /// The rule for values that are not strings: their JSON text, never a silent drop.
    @Test func headerValuesThatAreNotStringsArePublishedAsTheirJSONText() throws {
        let json = #"{"s":"text","empty":"","n":3,"f":1.5,"t":true,"null":null,"nested":{"a":[1,"x"]},"list":[1,2]}"#
        let headers = try EnvelopeBuilder.decodeHeaders(json)
        #expect(headers.count == 8, "\(headers)")
        #expect(headers["s"] == "text" && headers["empty"] == "")
        #expect(headers["n"] == "3" && headers["f"] == "1.5" && headers["t"] == "true")
        #expect(headers["null"] == "null", "null is kept, distinct from an empty string")
        #expect(headers["nested"] == #"{"a":[1,"x"]}"#)
        #expect(headers["list"] == "[1,2]")
        guard case .record(let record, _) = builder.build(message(headers: json)) else {
            Issue.record("expected a record"); return
        }
        let envelope = try Envelope(serializedBytes: record.value)
        #expect(envelope.headers == headers)
    }

    @Test func thePublishingRelayIsARecordHeaderNotPartOfTheEnvelope() throws {
        var builder = self.builder
        builder.publisher = "relay-7"
        guard case .record(let record, _) = builder.build(message()), case .record(let plain, _) = self.builder.build(message()) else {
            Issue.record("expected records"); return
        }
        #expect(record.headers.first { $0.name == "outbox-relay" }.map { String(decoding: $0.value, as: UTF8.self) } == "relay-7")
        #expect(!plain.headers.contains { $0.name == "outbox-relay" })
        #expect(record.value == plain.value, "the envelope is the same whoever publishes it")
    }

    @Test func undecodableHeadersArePoison() {
        guard case .poison(let reason, _) = builder.build(message(headers: "[1,2]")) else {
            Issue.record("expected poison"); return
        }
        #expect(reason == .undecodable)
    }
}
