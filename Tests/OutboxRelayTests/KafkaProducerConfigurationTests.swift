import OutboxRelay
import Testing

@Suite("KafkaProducerConfiguration")
struct KafkaProducerConfigurationTests {
    @Test("the defaults are valid librdkafka properties")
    func defaultsValidate() throws {
        try KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:19092").validate()
    }

    @Test("defaults carry the relay's guarantees, user properties come last and win")
    func ordering() {
        var configuration = KafkaProducerConfiguration(
            bootstrapServers: "b1:9092",
            properties: ["linger.ms": "20", "security.protocol": "ssl"],
            messageTimeout: .milliseconds(1500)
        )
        configuration.properties["compression.type"] = "zstd"
        let properties = configuration.librdkafkaProperties
        func last(_ name: String) -> String? { properties.last { $0.name == name }?.value }
        #expect(properties.first?.name == "bootstrap.servers")
        #expect(last("bootstrap.servers") == "b1:9092")
        #expect(last("enable.idempotence") == "true")
        #expect(last("acks") == "all")
        #expect(last("partitioner") == "murmur2_random")
        // librdkafka never times out first: twice the delivery timeout plus a minute (the relay purges at 1.5 s).
        #expect(last("message.timeout.ms") == "63000")
        #expect(last("linger.ms") == "20")
        #expect(last("compression.type") == "zstd")
        #expect(last("security.protocol") == "ssl")
        let lingerPositions = properties.indices.filter { properties[$0].name == "linger.ms" }
        #expect(lingerPositions.count == 2)
        #expect(properties[lingerPositions[1]].value == "20")
    }

    @Test("an unknown property is rejected with a message naming it")
    func bogusProperty() {
        let configuration = KafkaProducerConfiguration(
            bootstrapServers: "127.0.0.1:19092",
            properties: ["bogus.property": "1"]
        )
        #expect {
            try configuration.validate()
        } throws: { error in
            guard case .invalidProperty(let name, _) = error as? KafkaClientError else { return false }
            return name == "bogus.property" && "\(error)".contains("bogus.property")
        }
    }

    @Test("an invalid value is rejected with librdkafka's reason (which names the alias target for acks)")
    func invalidValue() {
        let configuration = KafkaProducerConfiguration(bootstrapServers: "x:1", properties: ["acks": "sometimes"])
        #expect {
            try configuration.validate()
        } throws: { error in
            guard case .invalidProperty(let name, let reason) = error as? KafkaClientError else { return false }
            return name == "acks" && reason.contains("Invalid value") && "\(error)".contains("\"acks\"")
        }
    }

    @Test("delivery.report.only.error cannot be set: sends would wait forever for success reports")
    func forbiddenProperty() {
        let configuration = KafkaProducerConfiguration(
            bootstrapServers: "x:1", properties: ["delivery.report.only.error": "true"])
        #expect(throws: KafkaClientError.self) { try configuration.validate() }
    }

    @Test("a secret's value is never echoed in the error")
    func secretNotEchoed() {
        let configuration = KafkaProducerConfiguration(
            bootstrapServers: "x:1", properties: ["ssl.key.password.bogus": "hunter2"])
        #expect {
            try configuration.validate()
        } throws: { error in
            !"\(error)".contains("hunter2") && "\(error)".contains("ssl.key.password.bogus")
        }
    }

    @Test("sensitive properties are redacted in descriptions")
    func redaction() {
        #expect(KafkaSecretProperties.isSensitive("sasl.password"))
        #expect(KafkaSecretProperties.isSensitive("ssl.key.password"))
        #expect(KafkaSecretProperties.isSensitive("ssl.key.pem"))
        #expect(KafkaSecretProperties.isSensitive("sasl.oauthbearer.client.secret"))
        #expect(!KafkaSecretProperties.isSensitive("sasl.username"))
        #expect(!KafkaSecretProperties.isSensitive("bootstrap.servers"))
        let text = KafkaSecretProperties.describe([("sasl.username", "relay"), ("sasl.password", "hunter2")])
        #expect(text == "sasl.username=relay, sasl.password=[redacted]")
    }

    @Test("stragglers may outlive the delivery timeout, never librdkafka's own message timeout")
    func stragglerTimeoutSitsBetweenTheDeliveryTimeoutAndLibrdkafkas() {
        for seconds in [1, 3, 30, 300] {
            let configuration = KafkaProducerConfiguration(bootstrapServers: "b:9092", messageTimeout: .seconds(seconds))
            #expect(configuration.stragglerTimeout > configuration.messageTimeout)
            #expect(configuration.stragglerTimeout <= configuration.librdkafkaMessageTimeout - .seconds(30))
        }
    }
}
