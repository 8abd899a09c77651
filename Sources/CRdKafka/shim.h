#ifndef OUTBOX_CRDKAFKA_SHIM_H
#define OUTBOX_CRDKAFKA_SHIM_H
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Small helpers for the Swift wrapper in Sources/OutboxRelay/Kafka/.
 * Only what Swift cannot express itself lives here:
 *   - rd_kafka_producev() is variadic, which Swift cannot call;
 *   - lock-free counters and codes shared between the librdkafka poll thread and a Swift task
 *     (DeliveryBatch), without a Swift atomics package or the macOS-15-gated Synchronization module.
 */

/*
 * Enqueues one message (librdkafka copies key and value: RD_KAFKA_MSG_F_COPY).
 * The partition is chosen by the configured partitioner (RD_KAFKA_PARTITION_UA).
 *
 * has_key distinguishes "no key" (NULL) from an empty key: Swift hands out a NULL base address
 * for an empty array, so an empty key is passed as a zero-length non-NULL pointer here.
 *
 * On success librdkafka owns `headers`; on failure the caller still owns them and must
 * destroy them with rd_kafka_headers_destroy().
 */
static inline rd_kafka_resp_err_t outbox_rd_kafka_produce(rd_kafka_t *rk,
                                                          const char *topic,
                                                          int has_key,
                                                          const void *key,
                                                          size_t key_len,
                                                          const void *value,
                                                          size_t value_len,
                                                          rd_kafka_headers_t *headers,
                                                          void *msg_opaque) {
    static const char empty[1] = {0};
    const void *k = has_key ? (key ? key : (const void *)empty) : NULL;
    const void *v = value ? value : (const void *)empty;
    if (headers) {
        return rd_kafka_producev(rk,
                                 RD_KAFKA_V_TOPIC(topic),
                                 RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_KEY(k, has_key ? key_len : 0),
                                 RD_KAFKA_V_VALUE((void *)v, value_len),
                                 RD_KAFKA_V_HEADERS(headers),
                                 RD_KAFKA_V_OPAQUE(msg_opaque),
                                 RD_KAFKA_V_END);
    }
    return rd_kafka_producev(rk,
                             RD_KAFKA_V_TOPIC(topic),
                             RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_KEY(k, has_key ? key_len : 0),
                             RD_KAFKA_V_VALUE((void *)v, value_len),
                             RD_KAFKA_V_OPAQUE(msg_opaque),
                             RD_KAFKA_V_END);
}

/* Atomically subtracts `amount` from *counter and returns the new value (acquire-release). */
static inline int64_t outbox_atomic_sub_fetch_i64(int64_t *counter, int64_t amount) {
    return __atomic_sub_fetch(counter, amount, __ATOMIC_ACQ_REL);
}

/* A delivery slot's code, written once by the poll thread and read by the sender while other
 * slots are still being written (a batch that returns early, leaving stragglers in flight). */
static inline void outbox_atomic_store_i32(int32_t *value, int32_t new_value) {
    __atomic_store_n(value, new_value, __ATOMIC_RELEASE);
}

static inline int32_t outbox_atomic_load_i32(int32_t *value) {
    return __atomic_load_n(value, __ATOMIC_ACQUIRE);
}

#endif
