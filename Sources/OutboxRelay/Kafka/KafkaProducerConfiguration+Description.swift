/// A redacted description: the configuration holds librdkafka properties such as `sasl.password`,
/// and anything that prints a value with `\(…)` or `String(reflecting:)` (ServiceLifecycle lists
/// its services at debug level) must not print them.
extension KafkaProducerConfiguration: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String {
        let properties = KafkaSecretProperties.describe(self.properties.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) })
        return "KafkaProducerConfiguration(bootstrapServers: \(bootstrapServers), messageTimeout: \(messageTimeout), properties: [\(properties)])"
    }

    public var debugDescription: String { description }
}
