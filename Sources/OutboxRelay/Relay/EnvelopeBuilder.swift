import Foundation
import NIOCore
import OutboxEnvelope
import SwiftProtobuf

/// Turns an outbox row into the Kafka record the consumers see: the protobuf `Envelope` as value,
/// the message key as record key, and headers that let consumers route without decoding.
struct EnvelopeBuilder: Sendable {
    /// The envelope `source`, also the prefix of every envelope id.
    let source: String
    let maximumMessageBytes: Int
    /// The relay publishing, sent as the `outbox-relay` record header (nil: no header): who wrote
    /// each copy of a record, for operators and for the tests that prove a relay stopped
    /// publishing a lane it lost. Not part of the envelope: two copies of one message are
    /// byte-identical envelopes whoever publishes them.
    var publisher: String? = nil {
        didSet { publisherHeader = Self.publisherHeader(publisher) }
    }
    /// The `outbox-relay` header's bytes, made once rather than for every record.
    private var publisherHeader: KafkaHeader?
    private static let contentTypeHeader = KafkaHeader(name: "content-type", value: Array("application/x-protobuf".utf8))

    init(source: String, maximumMessageBytes: Int, publisher: String? = nil) {
        self.source = source
        self.maximumMessageBytes = maximumMessageBytes
        self.publisher = publisher
        publisherHeader = Self.publisherHeader(publisher)
    }

    private static func publisherHeader(_ publisher: String?) -> KafkaHeader? {
        publisher.map { KafkaHeader(name: "outbox-relay", value: Array($0.utf8)) }
    }

    /// Either the record to produce, or why the message can never be produced.
    enum Outcome: Sendable {
        case record(KafkaRecord, envelopeID: String)
        case poison(DeadLetterReason, String)
    }

    func build(_ message: PendingMessage) -> Outcome {
        if let problem = KafkaTopicName.problem(with: message.topic) {
            return .poison(.invalidTopic, problem)
        }
        let headers: [String: String]
        do {
            headers = try Self.decodeHeaders(message.headersJSON)
        } catch {
            return .poison(.undecodable, "headers are not a JSON object: \(error)")
        }
        var envelope = Envelope()
        envelope.id = "\(source)/\(message.id)"
        envelope.source = source
        envelope.type = message.type ?? ""
        envelope.time = Google_Protobuf_Timestamp(date: message.createdAt)
        envelope.contentType = message.contentType ?? ""
        let key = message.key.map { Array($0.readableBytesView) }
        if let key { envelope.key = Data(key) }
        envelope.payload = Data(message.payload.readableBytesView)
        envelope.headers = headers
        envelope.sequence = message.id
        envelope.attempt = UInt32(clamping: Int(message.attempts) + 1)
        envelope.traceparent = headers["traceparent"] ?? ""
        envelope.tracestate = headers["tracestate"] ?? ""
        envelope.topic = message.topic
        let value: [UInt8]
        do {
            value = try envelope.serializedBytes()
        } catch {
            return .poison(.undecodable, "the envelope could not be encoded: \(error)")
        }
        if value.count > maximumMessageBytes {
            return .poison(
                .messageTooLarge,
                "encoded envelope is \(value.count) bytes, over the limit of \(maximumMessageBytes) bytes (setting max-message-bytes)")
        }
        var recordHeaders = [Self.contentTypeHeader, KafkaHeader(name: "outbox-id", value: Array(envelope.id.utf8))]
        recordHeaders.reserveCapacity(6)
        if let publisherHeader { recordHeaders.append(publisherHeader) }
        if let type = message.type { recordHeaders.append(KafkaHeader(name: "outbox-type", value: Array(type.utf8))) }
        if !envelope.traceparent.isEmpty {
            recordHeaders.append(KafkaHeader(name: "traceparent", value: Array(envelope.traceparent.utf8)))
        }
        if !envelope.tracestate.isEmpty {
            recordHeaders.append(KafkaHeader(name: "tracestate", value: Array(envelope.tracestate.utf8)))
        }
        return .record(KafkaRecord(topic: message.topic, key: key, value: value, headers: recordHeaders), envelopeID: envelope.id)
    }

    /// Headers are stored as a JSON object. A string value is published as it is; every other value
    /// (number, boolean, `null`, array, object) as its JSON text (`42`, `true`, `null`,
    /// `{"a":1}`), so nothing an application wrote is dropped and a consumer can tell `null` from
    /// an empty string.
    static func decodeHeaders(_ json: String) throws -> [String: String] {
        if json == "{}" { return [:] }
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])
        guard let dictionary = object as? [String: Any] else { throw HeadersNotAnObject() }
        var headers: [String: String] = [:]
        headers.reserveCapacity(dictionary.count)
        for (name, value) in dictionary {
            switch value {
            case let string as String: headers[name] = string
            case is NSNull: headers[name] = "null"
            default:
                let data = try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])
                headers[name] = String(decoding: data, as: UTF8.self)
            }
        }
        return headers
    }

    struct HeadersNotAnObject: Error, CustomStringConvertible {
        var description: String { "expected a JSON object of strings" }
    }
}
