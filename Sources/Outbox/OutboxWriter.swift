import Foundation
import Logging
import PostgresNIO

/// Enqueues messages on the caller's own connection, inside the caller's transaction.
///
/// That is the whole point of a transactional outbox: the message row commits or rolls back
/// together with the business change. The writer therefore never opens a transaction itself; it
/// calls the schema's public `enqueue(...)` SQL function, which any other language can call the
/// same way, so lane hashing and wake-up notifications behave identically for every producer.
public struct OutboxWriter: Sendable {
    public let schema: SchemaName

    public init(schema: SchemaName = .default) {
        self.schema = schema
    }

    /// Enqueues one message and returns its outbox id (the envelope's `sequence`).
    @discardableResult
    public func enqueue(
        _ message: OutboxMessage, on connection: PostgresConnection, logger: Logger
    ) async throws -> Int64 {
        let ids = try await enqueue([message], on: connection, logger: logger)
        return ids[0]
    }

    /// Enqueues many messages with one round trip and returns their outbox ids in input order.
    ///
    /// Ids increase in input order, so several messages for one key keep their order. Each key is
    /// locked until the caller's transaction ends: another transaction enqueueing one of these keys
    /// waits for it, so per key commit order is id order (see the schema's migration 3).
    @discardableResult
    public func enqueue(
        _ messages: [OutboxMessage], on connection: PostgresConnection, logger: Logger
    ) async throws -> [Int64] {
        guard !messages.isEmpty else { return [] }
        let query = try Self.enqueueQuery(schema: schema, messages: messages)
        var ids: [Int64] = []
        ids.reserveCapacity(messages.count)
        for try await id in try await connection.query(query, logger: logger).decode(Int64.self) {
            ids.append(id)
        }
        return ids
    }

    /// One statement that enqueues every message through `enqueue(...)`, for PostgresNIO.
    static func enqueueQuery(schema: SchemaName, messages: [OutboxMessage]) throws -> PostgresQuery {
        let statement = try EnqueueStatement(schema: schema, messages: messages)
        var binds = PostgresBindings(capacity: statement.values.count)
        for value in statement.values {
            switch value {
            case .text(let text): binds.append(text)
            case .texts(let texts): binds.append(texts)
            case .bools(let bools): binds.append(bools)
            case .bytea(let bytes): binds.append(bytes)
            case .byteas(let bytes): binds.append(bytes)
            }
        }
        return PostgresQuery(unsafeSQL: statement.sql, binds: binds)
    }
}

/// The enqueue statement and its values, independent of the client library that sends it: the
/// PostgresNIO writer and the SQLKit one (`OutboxSQLKit`) send exactly this SQL, so both enqueue
/// with the same locking, ordering and validation.
package struct EnqueueStatement: Sendable {
    /// A value for the statement's `$n` (the n-th of ``values``).
    package enum Value: Sendable {
        case text(String?)
        case texts([String])
        case bools([Bool])
        case bytea(ByteBuffer)
        case byteas([ByteBuffer])
    }

    /// SQL with `$1`, `$2`, … placeholders; a placeholder may occur more than once.
    package let sql: String
    package let values: [Value]

    package init(schema: SchemaName, messages: [OutboxMessage]) throws {
        if messages.count == 1 {
            self = try Self.single(schema: schema, message: messages[0])
            return
        }
        var topics: [String] = []
        var keys: [String?] = []
        var payloads: [ByteBuffer] = []
        var headers: [String] = []
        var types: [String?] = []
        var contentTypes: [String?] = []
        for message in messages {
            topics.append(message.topic)
            keys.append(message.key)
            payloads.append(ByteBuffer(bytes: message.payload))
            headers.append(try HeadersJSON.encode(message.headers))
            types.append(message.type)
            contentTypes.append(message.contentType)
        }
        // `enqueue` locks each key until the transaction ends (same-key enqueues commit in id
        // order; see the schema's migration 3). Taken one by one in input order, two batches with
        // the same keys in different orders could deadlock; so every key of the batch is locked
        // first, in a fixed order (the CTE is computed before any `enqueue` runs), and `enqueue`
        // then finds its lock held. `WITH ORDINALITY` + `ORDER BY` make ids follow the input.
        sql = """
            WITH locked AS MATERIALIZED (
                SELECT \(schema).lock_keys(array_agg(convert_to(u.key, 'UTF8')) FILTER (WHERE NOT u.no_key))
                FROM unnest($2::text[], $3::bool[]) AS u(key, no_key))
            SELECT \(schema).enqueue(m.topic, CASE WHEN m.no_key THEN NULL ELSE m.key END, m.payload,
                                     m.headers::jsonb, NULLIF(m.type, ''), NULLIF(m.content_type, ''))
            FROM locked,
                 unnest($1::text[], $2::text[], $3::bool[], $4::bytea[], $5::text[], $6::text[], $7::text[])
                 WITH ORDINALITY AS m(topic, key, no_key, payload, headers, type, content_type, ord)
            ORDER BY m.ord
            """
        values = [
            .texts(topics), .texts(keys.map { $0 ?? "" }), .bools(keys.map { $0 == nil }), .byteas(payloads), .texts(headers),
            .texts(types.map { $0 ?? "" }), .texts(contentTypes.map { $0 ?? "" }),
        ]
    }

    private init(sql: String, values: [Value]) {
        self.sql = sql
        self.values = values
    }

    /// One message: `enqueue` locks its one key itself, so the batch's lock-everything-first step
    /// (a second function call and an aggregate over an array of one) is left out. It was most of
    /// the statement's time: the common case of one message per business transaction.
    static func single(schema: SchemaName, message: OutboxMessage) throws -> EnqueueStatement {
        EnqueueStatement(
            sql: "SELECT \(schema).enqueue($1::text, $2::text, $3::bytea, $4::jsonb, $5::text, $6::text)",
            values: [
                .text(message.topic), .text(message.key), .bytea(ByteBuffer(bytes: message.payload)),
                .text(try HeadersJSON.encode(message.headers)), .text(message.type), .text(message.contentType),
            ])
    }
}

/// Headers travel as a JSON object of strings (a `jsonb` column), readable from SQL by operators.
enum HeadersJSON {
    static func encode(_ headers: [String: String]) throws -> String {
        if headers.isEmpty { return "{}" }
        let data = try JSONSerialization.data(withJSONObject: headers, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
