/// Redacted descriptions: the settings hold the database password and secret Kafka properties,
/// and the default reflection (`"\(settings)"`, a debugger, a log line's metadata) would print them.
extension RelaySettings: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String {
        let properties = KafkaSecretProperties.describe(kafkaProperties.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) })
        return "RelaySettings(database: \(database), kafkaBrokers: \(kafkaBrokers ?? "-"), kafkaProperties: [\(properties)], "
            + "relay: \(relay.relayID), schema: \(relay.schema), logLevel: \(logLevel), logFormat: \(logFormat.rawValue))"
    }

    public var debugDescription: String { description }
}

extension EffectiveSettings: CustomStringConvertible, CustomDebugStringConvertible {
    /// The `config check` table, which redacts every secret.
    public var description: String { table() }
    public var debugDescription: String { table() }
}
