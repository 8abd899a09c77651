#ifndef OUTBOX_CRDKAFKA_MOCK_H
#define OUTBOX_CRDKAFKA_MOCK_H
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdint.h>

/*
 * Tests only: librdkafka's mock cluster (rdkafka_mock.h), for broker faults a single real broker
 * cannot produce on demand (a failed produce request in the middle of a batch, a partition
 * without leader, a broker down, slow responses).
 *
 * rd_kafka_mock_broker_push_request_error_rtts() is variadic, which Swift cannot call: this
 * wrapper pushes one (error, round-trip time) pair.
 */
static inline rd_kafka_resp_err_t outbox_mock_push_broker_error_rtt(rd_kafka_mock_cluster_t *mcluster,
                                                                   int32_t broker_id,
                                                                   int16_t api_key,
                                                                   rd_kafka_resp_err_t err,
                                                                   int rtt_ms) {
    return rd_kafka_mock_broker_push_request_error_rtts(mcluster, broker_id, api_key, 1, err, rtt_ms);
}
#endif
