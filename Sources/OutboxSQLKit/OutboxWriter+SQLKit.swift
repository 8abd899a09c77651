import NIOCore
import Outbox
import PostgresNIO
import SQLKit

extension OutboxWriter {
    /// Enqueues one message on `database` and returns its outbox id: from Vapor, inside
    /// `req.db.transaction { db in … }` with `db as! any SQLDatabase`, so the message commits or
    /// rolls back with the business change.
    @discardableResult
    public func enqueue(_ message: OutboxMessage, on database: any SQLDatabase) async throws -> Int64 {
        try await enqueue([message], on: database)[0]
    }

    /// Enqueues many messages in one round trip and returns their ids in input order, with the
    /// same SQL, key locking and ordering as the PostgresNIO `enqueue(_:on:logger:)`.
    ///
    /// `database` must be a PostgreSQL session (PostgresKit, or Fluent's PostgreSQL driver). Run it
    /// inside the transaction of the business change: on a pooled database outside a
    /// transaction every call commits on its own, which is still safe but not transactional.
    @discardableResult
    public func enqueue(_ messages: [OutboxMessage], on database: any SQLDatabase) async throws -> [Int64] {
        guard !messages.isEmpty else { return [] }
        let statement = try EnqueueStatement(schema: schema, messages: messages)
        let rows = try await database.raw(Self.sqlQueryString(statement)).all()
        return try rows.map { try $0.decode(column: "enqueue", as: Int64.self) }
    }

    /// The statement as an `SQLQueryString`: its text, with each `$n` replaced by a bind of the
    /// n-th value (SQLKit numbers binds itself, in order of appearance, so a placeholder that
    /// occurs twice is bound twice).
    static func sqlQueryString(_ statement: EnqueueStatement) -> SQLQueryString {
        var query = SQLQueryString("")
        var text = Substring(statement.sql)
        while let dollar = text.firstIndex(of: "$") {
            query.appendInterpolation(unsafeRaw: String(text[..<dollar]))
            let digits = text[text.index(after: dollar)...].prefix(while: \.isNumber)
            switch statement.values[Int(digits)! - 1] {
            case .text(nil): query.appendInterpolation(bind: String?.none)
            case let value: query.appendInterpolation(bind: SQLKitValue(value))
            }
            text = text[digits.endIndex...]
        }
        query.appendInterpolation(unsafeRaw: String(text))
        return query
    }
}

/// An enqueue value bound as PostgresNIO encodes it. PostgresKit binds a value that is
/// `PostgresEncodable` as it is (its fast path), so a `bytea[]` of payloads goes over the wire as
/// binary, as with PostgresNIO; `Encodable` only makes it bindable in SQLKit, and is not used.
struct SQLKitValue: Encodable, Sendable, PostgresThrowingDynamicTypeEncodable {
    let value: EnqueueStatement.Value

    init(_ value: EnqueueStatement.Value) { self.value = value }

    var psqlType: PostgresDataType {
        switch value {
        case .text: .text
        case .texts: .textArray
        case .bools: .boolArray
        case .bytea: .bytea
        case .byteas: .byteaArray
        }
    }

    var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) throws {
        switch value {
        case .text(let text): text?.encode(into: &buffer, context: context)
        case .texts(let texts): texts.encode(into: &buffer, context: context)
        case .bools(let bools): bools.encode(into: &buffer, context: context)
        case .bytea(let bytes): bytes.encode(into: &buffer, context: context)
        case .byteas(let bytes): bytes.encode(into: &buffer, context: context)
        }
    }

    func encode(to encoder: any Encoder) throws {
        throw EncodingError.invalidValue(
            value,
            .init(codingPath: encoder.codingPath, debugDescription: "outbox enqueue values bind through PostgresKit (a PostgreSQL SQLDatabase)"))
    }
}
