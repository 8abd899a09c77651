/// One Kafka record header.
///
/// Kafka header values are raw bytes; the relay uses them for `content-type`, the envelope id and type,
/// and W3C `traceparent`. An empty `value` is sent as an empty (not a null) header value.
public struct KafkaHeader: Sendable, Equatable {
    public var name: String
    public var value: [UInt8]

    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }

    /// Convenience for textual headers (UTF-8).
    public init(name: String, string: String) {
        self.init(name: name, value: Array(string.utf8))
    }
}

/// A record to produce. The partition is chosen by the producer's partitioner from the key
/// (`murmur2_random`: the same partition a Java client picks for the same key), which is what keeps
/// records of one key in order.
public struct KafkaRecord: Sendable {
    public var topic: String
    /// The Kafka record key; `nil` means no key (records then spread over partitions).
    /// An empty array is an empty key, which is not the same as no key.
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]

    public init(topic: String, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader] = []) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
    }
}
