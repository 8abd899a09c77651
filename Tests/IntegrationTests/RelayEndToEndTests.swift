import Foundation
import Logging
import Outbox
import OutboxEnvelope
import OutboxRelay
import PostgresNIO
import Testing

/// The relay core against real PostgreSQL and a real Kafka-protocol broker. Serialized: one test
/// stops the broker, which every other test needs.
@Suite(.serialized) struct RelayEndToEndTests {
    @Test func publishesEveryCommittedMessageInKeyOrderAndNothingRolledBack() async throws {
        try await OutboxFixture.with { fixture in
            let keys = 100
            var expected: [Int64: OutboxMessage] = [:]
            // 10,000 messages in 100 transactions of 100, keys interleaved across transactions.
            for transaction in 0..<100 {
                let messages = (0..<100).map { i -> OutboxMessage in
                    let n = transaction * 100 + i
                    return OutboxMessage(
                        topic: fixture.topic, key: "key-\(n % keys)", payload: "payload-\(n)",
                        headers: ["n": "\(n)", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
                        type: "test.event", contentType: "text/plain")
                }
                let ids = try await fixture.enqueue(messages)
                for (id, message) in zip(ids, messages) { expected[id] = message }
            }
            // A rolled-back transaction publishes nothing.
            struct Rollback: Error {}
            await #expect(throws: PostgresTransactionError.self) {
                try await fixture.client.withTransaction(logger: fixture.logger) { connection in
                    let rolledBack = (0..<50).map {
                        OutboxMessage(topic: fixture.topic, key: "key-\($0)", payload: "rolled-back")
                    }
                    try await OutboxWriter(schema: fixture.schema).enqueue(rolledBack, on: connection, logger: fixture.logger)
                    throw Rollback()
                }
            }
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 10_000)

            try await fixture.drain(fixture.relayConfiguration())

            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0)
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.dead_letters", as: Int64.self) == 0)

            let records = try await fixture.readTopic()
            #expect(records.count == 10_000)
            var seen = Set<Int64>()
            var lastSequenceByKey: [String: Int64] = [:]
            var orderViolations = 0
            for record in records.sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
                let envelope = try Envelope(serializedBytes: record.value)
                let key = String(decoding: envelope.key, as: UTF8.self)
                guard let message = expected[envelope.sequence] else {
                    Issue.record("unexpected sequence \(envelope.sequence) (payload \(String(decoding: envelope.payload, as: UTF8.self)))")
                    continue
                }
                seen.insert(envelope.sequence)
                #expect(envelope.id == "test/\(envelope.sequence)")
                #expect(key == message.key)
                #expect(record.key == message.key.map { Array($0.utf8) })
                #expect(Array(envelope.payload) == message.payload)
                #expect(envelope.headers == message.headers)
                #expect(envelope.type == "test.event")
                #expect(envelope.contentType == "text/plain")
                #expect(envelope.attempt == 1)
                #expect(envelope.traceparent == message.headers["traceparent"])
                if let last = lastSequenceByKey[key], last >= envelope.sequence { orderViolations += 1 }
                lastSequenceByKey[key] = envelope.sequence
            }
            #expect(seen.count == 10_000, "every committed message published")
            #expect(orderViolations == 0, "per key, outbox id order")
            #expect(lastSequenceByKey.count == keys)
        }
    }

    @Test func poisonIsDeadLetteredWithoutHoldingBackOtherKeys() async throws {
        try await OutboxFixture.with { fixture in
            let big = OutboxMessage(
                topic: fixture.topic, key: "big", payload: [UInt8](repeating: 0x41, count: 2_000_000))
            let badTopic = OutboxMessage(topic: "bad topic!", key: "bad", payload: "never")
            let poisonIDs = try await fixture.enqueue([big, badTopic])
            let after = (0..<100).map { OutboxMessage(topic: fixture.topic, key: "other-\($0 % 10)", payload: "ok-\($0)") }
                + [OutboxMessage(topic: fixture.topic, key: "big", payload: "after-the-big-one")]
            let afterIDs = try await fixture.enqueue(after)

            try await fixture.drain(fixture.relayConfiguration { $0.maximumMessageBytes = 1_000_000 })

            let rows = try await fixture.client.query(
                PostgresQuery(unsafeSQL: "SELECT id, reason, error, topic FROM \(fixture.schema.rawValue).dead_letters ORDER BY id"),
                logger: fixture.logger)
            var deadLetters: [(Int64, String, String, String)] = []
            for try await row in rows.decode((Int64, String, String, String).self) { deadLetters.append(row) }
            #expect(deadLetters.map(\.0) == poisonIDs)
            #expect(deadLetters.map(\.1) == ["message_too_large", "invalid_topic"])
            #expect(deadLetters[0].2.contains("1000000"))
            #expect(deadLetters[1].3 == "bad topic!")
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0)

            let records = try await fixture.readTopic()
            let sequences = Set(try records.map { try Envelope(serializedBytes: $0.value).sequence })
            #expect(sequences == Set(afterIDs))
        }
    }

    @Test func brokerOutageSpendsNoAttemptAndPublishesEverythingAfterwards() async throws {
        try await OutboxFixture.with { fixture in
            try TestServices.services("stop-broker")
            do {
                let messages = (0..<300).map { OutboxMessage(topic: fixture.topic, key: "k-\($0 % 30)", payload: "m-\($0)") }
                let ids = try await fixture.enqueue(messages)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await fixture.drain(fixture.relayConfiguration(), messageTimeout: .seconds(3))
                    }
                    // Long enough for several delivery timeouts while the broker is down.
                    try await Task.sleep(for: .seconds(8))
                    #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 300)
                    #expect(try await fixture.scalar("SELECT coalesce(max(attempts), 0) FROM {schema}.messages", as: Int32.self) == 0)
                    #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.dead_letters", as: Int64.self) == 0)
                    try TestServices.services("start-broker")
                    try await group.next()
                }
                #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0)
                #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.dead_letters", as: Int64.self) == 0)
                // The broker restarted empty (memory storage), so everything on the topic now was
                // published after the outage: each message at least once, and every first attempt.
                let records = try await fixture.readTopic()
                let envelopes = try records.map { try Envelope(serializedBytes: $0.value) }
                #expect(Set(envelopes.map(\.sequence)) == Set(ids))
                #expect(envelopes.allSatisfy { $0.attempt == 1 })
            } catch {
                try? TestServices.services("start-broker")
                throw error
            }
        }
    }

    @Test func sqlLaneHashMatchesTheSwiftOne() async throws {
        try await OutboxFixture.with { fixture in
            let keys = (0..<500).map { "key-\($0)-\(UInt32.random(in: 0...UInt32.max))" } + ["", "ключ", "order-1"]
            var binds = PostgresBindings()
            binds.append(keys)
            let rows = try await fixture.client.query(
                PostgresQuery(
                    unsafeSQL: "SELECT k, \(fixture.schema.rawValue).lane_of(convert_to(k, 'UTF8'), 0) FROM unnest($1::text[]) AS k",
                    binds: binds), logger: fixture.logger)
            var checked = 0
            for try await (key, lane) in rows.decode((String, Int16).self) {
                #expect(lane == LaneHash.lane(forKey: key), "key \(key)")
                checked += 1
            }
            #expect(checked == keys.count)
            #expect(try await fixture.scalar("SELECT {schema}.lane_of(NULL, 513)", as: Int16.self) == 1)
        }
    }
}
