/// librdkafka properties that have a first-class setting of their own. Setting them through
/// `kafka.properties` would override the setting behind the relay's back: `message.timeout.ms`
/// there would leave the relay's shutdown grace period and stall limit (derived from
/// `kafka.message_timeout`) out of step with what librdkafka really does.
enum KafkaPropertyConflicts {
    static let ownedBySettings: [String: String] = [
        "bootstrap.servers": "OUTBOX_KAFKA_BROKERS",
        "metadata.broker.list": "OUTBOX_KAFKA_BROKERS",
        "message.timeout.ms": "OUTBOX_KAFKA_MESSAGE_TIMEOUT",
        "delivery.timeout.ms": "OUTBOX_KAFKA_MESSAGE_TIMEOUT",
    ]

    /// Throws for the first (by name) property that a setting owns, naming the setting to use.
    static func check(_ properties: [String: String], origins: [String: SettingOrigin] = [:]) throws(ConfigurationError) {
        for name in properties.keys.sorted() {
            guard let owner = ownedBySettings[name] else { continue }
            let key = Setting.fileKey(forEnvironmentName: owner) ?? owner
            throw ConfigurationError(
                setting: "OUTBOX_KAFKA_PROPERTIES",
                problem: "\(name) is set by \(key) (\(owner), \(Setting.flag(forEnvironmentName: owner))); set it there instead, so the relay's timeouts agree with librdkafka's",
                origin: origins[name])
        }
    }
}
