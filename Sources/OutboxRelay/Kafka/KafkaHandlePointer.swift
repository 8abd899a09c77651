import CRdKafka

/// An `rd_kafka_t *` that may cross threads.
///
/// librdkafka handles are thread-safe for the calls we make on them (produce, poll, metadata, yield); what is not
/// safe is using one after `rd_kafka_destroy`, which ``KafkaProducerHandle`` prevents by counting users.
struct KafkaHandlePointer: @unchecked Sendable {
    let raw: OpaquePointer
}
