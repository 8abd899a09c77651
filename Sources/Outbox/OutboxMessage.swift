import NIOCore

/// One message to publish, as an application hands it to the outbox.
///
/// The key decides ordering: messages with the same key are published in the order they were
/// enqueued (outbox id order), across the whole relay fleet. Messages without a key are spread
/// over all lanes and have no ordering guarantee.
public struct OutboxMessage: Sendable, Hashable {
    public var topic: String
    public var key: String?
    public var payload: [UInt8]
    /// Application headers; `traceparent` and `tracestate` are carried into the Kafka record and
    /// the envelope's trace fields.
    public var headers: [String: String]
    /// Application-defined event type, e.g. `order.created`.
    public var type: String?
    /// Media type of the payload, e.g. `application/json`.
    public var contentType: String?

    public init(
        topic: String,
        key: String?,
        payload: [UInt8],
        headers: [String: String] = [:],
        type: String? = nil,
        contentType: String? = nil
    ) {
        self.topic = topic
        self.key = key
        self.payload = payload
        self.headers = headers
        self.type = type
        self.contentType = contentType
    }

    public init(
        topic: String,
        key: String?,
        payload: String,
        headers: [String: String] = [:],
        type: String? = nil,
        contentType: String? = nil
    ) {
        self.init(
            topic: topic, key: key, payload: Array(payload.utf8), headers: headers, type: type,
            contentType: contentType)
    }
}
