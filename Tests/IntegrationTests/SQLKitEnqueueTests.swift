import Foundation
import Logging
import Outbox
import OutboxEnvelope
import OutboxSQLKit
import PostgresKit
import PostgresNIO
import SQLKit
import Testing

/// `OutboxSQLKit` on the real PostgreSQL through PostgresKit's `SQLDatabase` (what Vapor's Fluent
/// PostgreSQL driver hands out as `req.db`): committed enqueues are published, rolled-back ones
/// never, ids in input order, and the rows are exactly what the PostgresNIO writer writes.
@Suite(.serialized) struct SQLKitEnqueueTests {
    @Test func committedEnqueuesArePublishedRolledBackOnesNeverIdsInOrder() async throws {
        try await OutboxFixture.with { fixture in
            let writer = OutboxWriter(schema: fixture.schema)
            let topic = fixture.topic
            let batch = (0..<6).map {
                OutboxMessage(
                    topic: topic, key: "order-\($0 % 2)", payload: Array("committed-\($0)".utf8),
                    headers: ["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"], type: "order.created",
                    contentType: "text/plain")
            }
            // A keyless message with bytes that are not text, sent alone (the one-message statement).
            let binary = OutboxMessage(topic: topic, key: nil, payload: [0, 255, 10, 13])
            let committed: [Int64] = try await fixture.client.withTransaction(logger: fixture.logger) { connection in
                let database = connection.sql()
                return try await writer.enqueue(batch, on: database) + [try await writer.enqueue(binary, on: database)]
            }
            struct RolledBack: Error {}
            let rollback = await #expect(throws: PostgresTransactionError.self) {
                try await fixture.client.withTransaction(logger: fixture.logger) { connection in
                    let database = connection.sql()
                    _ = try await writer.enqueue([OutboxMessage(topic: topic, key: "order-0", payload: "rolled-back")], on: database)
                    _ = try await writer.enqueue((0..<3).map { OutboxMessage(topic: topic, key: "order-\($0)", payload: "rolled-back") }, on: database)
                    throw RolledBack()
                }
            }
            #expect(rollback?.closureError is RolledBack && rollback?.rollbackError == nil)
            #expect(committed.count == 7 && committed == committed.sorted() && Set(committed).count == 7, "\(committed)")
            let rows = try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self)
            #expect(rows == 7, "only the committed rows are in the outbox")
            let stored = try await fixture.scalar(
                "SELECT headers->>'traceparent' || ' ' || type || ' ' || content_type FROM {schema}.messages WHERE id = \(committed[0])",
                as: String.self)
            #expect(stored == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 order.created text/plain")

            try await fixture.drain(fixture.relayConfiguration())
            let envelopes = try await fixture.readTopic().map { try Envelope(serializedBytes: $0.value) }
            #expect(envelopes.map(\.sequence).sorted() == committed, "every committed message once, no rolled-back one")
            #expect(!envelopes.contains { String(decoding: $0.payload, as: UTF8.self) == "rolled-back" })
            #expect(envelopes.first { $0.sequence == committed[6] }.map { Array($0.payload) } == [0, 255, 10, 13])
            for key in ["order-0", "order-1"] {
                let sequences = envelopes.filter { String(decoding: $0.key, as: UTF8.self) == key }.map(\.sequence)
                #expect(sequences == sequences.sorted() && sequences.count == 3, "\(key): \(sequences)")
            }
        }
    }

    /// The same validation as the PostgresNIO writer: a bad message is refused by `enqueue` itself.
    @Test func anEmptyTopicIsRefusedByTheSameFunction() async throws {
        try await OutboxFixture.with { fixture in
            let writer = OutboxWriter(schema: fixture.schema)
            let error = await #expect(throws: (any Error).self) {
                try await fixture.client.withConnection { connection in
                    _ = try await writer.enqueue(OutboxMessage(topic: "", key: "k", payload: "p"), on: connection.sql())
                }
            }
            #expect(String(reflecting: error).contains("topic must not be empty"), "\(String(reflecting: error))")
        }
    }
}
