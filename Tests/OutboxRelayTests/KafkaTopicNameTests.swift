import OutboxRelay
import Testing

@Suite("KafkaTopicName")
struct KafkaTopicNameTests {
    @Test("valid names", arguments: ["orders", "a", "orders.v1", "orders_v1-eu", String(repeating: "x", count: 249), "..."])
    func valid(_ name: String) {
        #expect(KafkaTopicName.isValid(name))
    }

    @Test("invalid names", arguments: ["", ".", "..", "bad topic!", "orders/v1", "ordérs", String(repeating: "x", count: 250)])
    func invalid(_ name: String) {
        #expect(KafkaTopicName.problem(with: name) != nil)
    }
}
