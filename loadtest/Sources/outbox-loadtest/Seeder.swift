import Foundation
import Logging
import NIOCore
import Outbox
import PostgresNIO

/// Fills the outbox fast with COPY, the way a bulk backlog appears (after an outage, a migration).
///
/// COPY bypasses `enqueue()`, so no NOTIFY is sent — relays started afterwards find the rows by
/// reading. `lane` is a generated column, computed by the database exactly as for `enqueue()`.
struct Seeder {
    let client: PostgresClient
    let schema: SchemaName
    let logger: Logger

    /// Seeds `count` messages for `topic`, keys `key-0 … key-(keys-1)` round robin (another
    /// `keyPrefix` than `key-` gives keys of their own), payloads of `payloadBytes`; returns the
    /// ids assigned.
    func seed(topic: String, count: Int, keys: Int, payloadBytes: Int, keyPrefix: String = "key-") async throws -> Set<Int64> {
        let filler = String(repeating: "ab", count: max(payloadBytes, 1))  // hex digits: payloadBytes bytes
        let hexPayload = "\\\\x" + filler.prefix(payloadBytes * 2)
        try await client.withConnection { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "SET search_path TO \(schema.rawValue)"), logger: logger)
            try await connection.copyFrom(table: "messages", columns: ["topic", "key", "payload"], logger: logger) { writer in
                var buffer = ByteBuffer()
                for i in 0..<count {
                    buffer.writeString("\(topic)\t\(keyPrefix)\(i % keys)\t\(hexPayload)\n")
                    if buffer.readableBytes > 1 << 20 {
                        try await writer.write(buffer)
                        buffer.clear()
                    }
                }
                if buffer.readableBytes > 0 { try await writer.write(buffer) }
            }
            try await connection.query(PostgresQuery(unsafeSQL: "RESET search_path"), logger: logger)
        }
        return try await ids(topic: topic, table: "messages")
    }

    /// Holds `topic`'s first row for a retry a day away: every later row of its key (all of
    /// `topic`'s, seeded with one key) waits behind it, as behind a hot key's failing message.
    func holdFirst(topic: String) async throws {
        var binds = PostgresBindings()
        binds.append(topic)
        let s = schema.rawValue
        try await client.query(
            PostgresQuery(
                unsafeSQL: """
                    UPDATE \(s).messages SET attempts = 1, available_at = now() + interval '1 day', last_error = 'held by the load test'
                    WHERE id = (SELECT min(id) FROM \(s).messages WHERE topic = $1)
                    """, binds: binds), logger: logger)
    }

    /// Deletes every outbox row of `topic` (dead tuples until a vacuum may remove them).
    func delete(topic: String) async throws {
        var binds = PostgresBindings()
        binds.append(topic)
        try await client.query(
            PostgresQuery(unsafeSQL: "DELETE FROM \(schema.rawValue).messages WHERE topic = $1", binds: binds), logger: logger)
    }

    /// The ids of `topic`'s rows in `table` (`messages` or `dead_letters`).
    func ids(topic: String, table: String) async throws -> Set<Int64> {
        var binds = PostgresBindings()
        binds.append(topic)
        let rows = try await client.query(
            PostgresQuery(unsafeSQL: "SELECT id FROM \(schema.rawValue).\(table) WHERE topic = $1", binds: binds), logger: logger)
        var ids = Set<Int64>()
        for try await id in rows.decode(Int64.self) { ids.insert(id) }
        return ids
    }
}
