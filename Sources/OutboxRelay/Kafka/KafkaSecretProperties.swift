/// Which librdkafka properties hold secrets, so their values never reach a log line or an error message.
///
/// librdkafka redacts its own sensitive properties in its debug output; this covers our side
/// (start-up logging of the effective configuration, ``KafkaClientError/invalidProperty(name:reason:)``).
/// The match is deliberately broad: hiding a harmless value costs nothing, logging a password is an incident.
public enum KafkaSecretProperties {
    private static let markers = ["password", "secret", "passphrase", "key.pem", "private.key", "oauthbearer.config",
                                  "ssl_key", "keytab", "token", "credential"]

    /// Whether `name` (a librdkafka property name) may hold a secret, e.g. `sasl.password`, `ssl.key.password`,
    /// `ssl.key.pem`, `sasl.oauthbearer.client.secret`.
    public static func isSensitive(_ name: String) -> Bool {
        let lowered = name.lowercased()
        return markers.contains { lowered.contains($0) }
    }

    /// `value`, or `[redacted]` when `name` is sensitive.
    public static func redacted(name: String, value: String) -> String {
        isSensitive(name) ? "[redacted]" : value
    }

    /// The properties as one `name=value, ...` string for logs, secrets redacted.
    public static func describe(_ properties: [(name: String, value: String)]) -> String {
        properties.map { "\($0.name)=\(redacted(name: $0.name, value: $0.value))" }.joined(separator: ", ")
    }
}
