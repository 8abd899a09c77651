import CRdKafka
import Foundation
import NIOCore
import Testing
@testable import OutboxRelay

/// The settle decisions: which rows of a produced batch are deleted, retried, dead-lettered, held
/// back or left, for every mix of delivery results.
@Suite struct SettlePlanTests {
    let retry = RetryPolicy(baseDelay: .milliseconds(100), maximumDelay: .seconds(5), maximumAttempts: 3)

    private func row(_ id: Int64, key: String?, attempts: Int32 = 0) -> PendingMessage {
        PendingMessage(
            id: id, topic: "t", key: key.map { ByteBuffer(string: $0) }, lane: 1, payload: ByteBuffer(), headersJSON: "{}",
            contentType: nil, type: nil, createdAt: Date(), attempts: attempts)
    }

    private func failed(_ code: rd_kafka_resp_err_t) -> SettlePlan.RowResult {
        .failed(DeliveryError(code: code.rawValue))
    }

    @Test func everyRowDeliveredIsDeleted() {
        let plan = SettlePlan([(row(1, key: "a"), .delivered), (row(2, key: "a"), .delivered), (row(3, key: "b"), .delivered)], retry: retry)
        #expect(plan.delivered.map(\.id) == [1, 2, 3])
        #expect(plan.heldBack.isEmpty && plan.left.isEmpty && plan.retries.isEmpty && plan.deadLetters.isEmpty)
        #expect(plan.outage == nil)
    }

    /// The gap case: m2 of key a delivered while m1 of a timed out. m2 must stay, or m1 would be
    /// published after it. Key b is untouched.
    @Test func aDeliveredRowBehindAnOutageOfItsKeyIsHeldBack() {
        let plan = SettlePlan(
            [
                (row(1, key: "a"), failed(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)),
                (row(2, key: "b"), .delivered),
                (row(3, key: "a"), .delivered),
                (row(4, key: "b"), .delivered),
            ], retry: retry)
        #expect(plan.left == [1])
        #expect(plan.heldBack == [3])
        #expect(plan.delivered.map(\.id) == [2, 4])
        #expect(plan.outage?.name == "_MSG_TIMED_OUT")
        #expect(plan.retries.isEmpty && plan.deadLetters.isEmpty)
    }

    @Test func aDeliveredRowBehindARetryOfItsKeyIsHeldBackAndTheRetrySpendsAnAttempt() {
        let plan = SettlePlan(
            [(row(1, key: "a", attempts: 1), failed(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS)), (row(2, key: "a"), .delivered)],
            retry: retry)
        #expect(plan.retries.map(\.id) == [1])
        #expect(plan.retries.first?.error.hasPrefix("NOT_ENOUGH_REPLICAS") == true)
        #expect(plan.heldBack == [2])
        #expect(plan.delivered.isEmpty && plan.outage == nil)
    }

    /// A straggler (still in flight when the send returned) writes nothing now and holds its key
    /// back like an outage, without being an outage: the batch goes on, the key waits for it.
    @Test func aRowStillInFlightHoldsItsKeyBackWithoutAnOutage() {
        let plan = SettlePlan(
            [
                (row(1, key: "a"), .inFlight),
                (row(2, key: "b"), .delivered),
                (row(3, key: "a"), .delivered),
                (row(4, key: nil), .inFlight),
                (row(5, key: nil), .delivered),
            ], retry: retry)
        #expect(plan.inFlight == [1, 4])
        #expect(plan.heldBack == [3])
        #expect(plan.delivered.map(\.id) == [2, 5])
        #expect(plan.outage == nil && plan.left.isEmpty && plan.retries.isEmpty && plan.deadLetters.isEmpty)
    }

    /// One key on two topics: r1 (topic 1) failed and is retried, r2 (topic 2) was left in flight.
    /// When r2 turns out delivered later it must not be deleted (it would then never come again
    /// after r1): the batch's plan names its key, and the straggler's own plan holds it back.
    @Test func aStragglerBehindAFailureOfItsKeyIsHeldBackWhenItArrives() {
        let batch = SettlePlan(
            [
                (row(1, key: "a"), failed(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS)),
                (row(2, key: "a"), .inFlight),
                (row(3, key: "b"), .inFlight),
                (row(4, key: "c"), .inFlight),
                (row(5, key: "c"), failed(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS)),
            ], retry: retry)
        #expect(batch.keysBlockingInFlight == [ByteBuffer(string: "a")], "b has no failure ahead, c's failure comes after it")
        let late = SettlePlan(
            [(row(2, key: "a"), .delivered), (row(3, key: "b"), .delivered), (row(4, key: "c"), .delivered)], retry: retry,
            blockedKeys: batch.keysBlockingInFlight)
        #expect(late.heldBack == [2])
        #expect(late.delivered.map(\.id) == [3, 4])
    }

    /// A dead letter leaves its key's order on purpose: what follows it is published and deleted.
    @Test func deadLettersDoNotHoldTheirKeyBack() {
        let plan = SettlePlan(
            [
                (row(1, key: "a"), .poison(.messageTooLarge, "too large")),
                (row(2, key: "a"), failed(RD_KAFKA_RESP_ERR_INVALID_RECORD)),
                (row(3, key: "a", attempts: 2), failed(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS)),
                (row(4, key: "b"), .delivered),
                (row(5, key: "c"), .poison(.invalidTopic, "bad topic")),
                (row(6, key: "c"), .delivered),
            ], retry: retry)
        #expect(plan.deadLetters.map(\.id) == [1, 2, 3, 5])
        #expect(plan.deadLetters.map(\.reason) == [.messageTooLarge, .brokerRejected, .attemptsExhausted, .invalidTopic])
        #expect(plan.deadLetters.map(\.attempts) == [0, 1, 3, 0])
        #expect(plan.delivered.map(\.id) == [4, 6])
        #expect(plan.heldBack.isEmpty && plan.retries.isEmpty)
    }

    /// Messages without a key have no order to keep.
    @Test func rowsWithoutAKeyAreNeverHeldBack() {
        let plan = SettlePlan(
            [(row(1, key: nil), failed(RD_KAFKA_RESP_ERR__PURGE_QUEUE)), (row(2, key: nil), .delivered)], retry: retry)
        #expect(plan.left == [1])
        #expect(plan.delivered.map(\.id) == [2])
        #expect(plan.heldBack.isEmpty)
    }

    /// Only rows behind the failure are held back; the key's rows before it are deleted.
    @Test func rowsOfTheKeyBeforeTheFailureAreDeleted() {
        let plan = SettlePlan(
            [
                (row(1, key: "a"), .delivered),
                (row(2, key: "a"), failed(RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)),
                (row(3, key: "a"), failed(RD_KAFKA_RESP_ERR__PURGE_QUEUE)),
                (row(4, key: "a"), .delivered),
            ], retry: retry)
        #expect(plan.delivered.map(\.id) == [1])
        #expect(plan.left == [2, 3])
        #expect(plan.heldBack == [4])
        #expect(plan.outage?.name == "_PURGE_INFLIGHT")
    }
}
