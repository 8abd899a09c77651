import CRdKafka

/// An owned `rd_kafka_conf_t` being built: every property is set through `rd_kafka_conf_set`, so librdkafka
/// itself validates names and values, and the first rejection becomes a ``KafkaClientError/invalidProperty(name:reason:)``
/// naming the property.
///
/// Not `Sendable`: a conf is built and handed to `rd_kafka_new` (which takes ownership on success) on one thread.
struct KafkaConf {
    let pointer: OpaquePointer

    /// Builds a conf from properties applied in order (later values win).
    static func make(
        _ properties: [(name: String, value: String)],
        forbidden: [String: String] = [:]
    ) throws(KafkaClientError) -> KafkaConf {
        guard let pointer = rd_kafka_conf_new() else {
            throw .creationFailed(reason: "rd_kafka_conf_new returned NULL (out of memory)")
        }
        let conf = KafkaConf(pointer: pointer)
        for (name, value) in properties {
            if let why = forbidden[name] {
                conf.destroy()
                throw .invalidProperty(name: name, reason: "it cannot be set for this client: \(why)")
            }
            if let reason = conf.set(name, value) {
                conf.destroy()
                throw .invalidProperty(name: name, reason: reason)
            }
        }
        return conf
    }

    /// Sets one property; returns librdkafka's reason when rejected (with the value hidden for secrets).
    func set(_ name: String, _ value: String) -> String? {
        var errstr = [CChar](repeating: 0, count: 512)
        let result = rd_kafka_conf_set(pointer, name, value, &errstr, errstr.count)
        guard result != RD_KAFKA_CONF_OK else { return nil }
        if KafkaSecretProperties.isSensitive(name) {
            return result == RD_KAFKA_CONF_UNKNOWN
                ? "no such configuration property"
                : "invalid value (not shown: the property holds a secret)"
        }
        let text = errstr.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return text.isEmpty ? "rejected (rd_kafka_conf_set result \(result.rawValue))" : text
    }

    /// Frees the conf; only when it was not handed to a successful `rd_kafka_new`.
    func destroy() {
        rd_kafka_conf_destroy(pointer)
    }
}
