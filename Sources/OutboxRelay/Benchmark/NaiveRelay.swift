import Foundation
import Logging
import NIOCore
import Outbox
import PostgresNIO

/// The relay everyone writes first, as the reference outbox-relay is measured against: in one
/// transaction, `SELECT … ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED`, produce every row
/// asynchronously, wait for all delivery reports, `DELETE` them, `COMMIT`. Several loops side by
/// side stand for several processes (each has its own connection and producer).
///
/// It is competent — batched, asynchronous, the same envelope and producer settings as the relay,
/// so the comparison is about the design and not about librdkafka — and it is what the relay's
/// design exists to beat: no lanes, so two loops can publish one key's rows out of order (the
/// ledger counts it), and no read-ahead, so each batch waits for the last one's round trips.
@_spi(Benchmark)
public enum NaiveRelay {
    /// Runs `loops` loops until each reads an empty batch; returns the messages deleted. A failed
    /// delivery rolls its batch back and fails the run (the reference has no retry policy).
    public static func drain(
        client: PostgresClient, schema: SchemaName, batchSize: Int, loops: Int, configuration: KafkaProducerConfiguration,
        logger: Logger
    ) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for loop in 0..<loops {
                group.addTask {
                    let producer = try KafkaProducer(configuration: configuration, logger: logger)
                    do {
                        let moved = try await run(
                            client: client, schema: schema, batchSize: batchSize, producer: producer,
                            source: "naive-relay-\(loop)", logger: logger)
                        await producer.close(flushTimeout: .seconds(5))
                        return moved
                    } catch {
                        await producer.close(flushTimeout: .seconds(5))
                        throw error
                    }
                }
            }
            return try await group.reduce(0, +)
        }
    }

    private static func run(
        client: PostgresClient, schema: SchemaName, batchSize: Int, producer: KafkaProducer, source: String, logger: Logger
    ) async throws -> Int {
        let s = schema.rawValue
        let select = """
            SELECT id, topic, key, lane, payload, headers, content_type, type, created_at, attempts
            FROM \(s).messages ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
            """
        let delete = "DELETE FROM \(s).messages WHERE id = ANY($1)"
        let builder = EnvelopeBuilder(source: source, maximumMessageBytes: 1_000_000)
        var moved = 0
        while true {
            let count = try await client.withTransaction(logger: logger) { connection in
                    var binds = PostgresBindings(capacity: 1)
                    binds.append(batchSize)
                    var rows: [PendingMessage] = []
                    for try await (id, topic, key, lane, payload, headers, contentType, type, createdAt, attempts) in try await connection.query(
                        PostgresQuery(unsafeSQL: select, binds: binds), logger: logger
                    ).decode((Int64, String, ByteBuffer?, Int16, ByteBuffer, String, String?, String?, Date, Int32).self) {
                        rows.append(PendingMessage(
                            id: id, topic: topic, key: key, lane: lane, payload: payload, headersJSON: headers,
                            contentType: contentType, type: type, createdAt: createdAt, attempts: attempts))
                    }
                    guard !rows.isEmpty else { return 0 }
                    let records = try rows.map { row in
                        guard case .record(let record, _) = builder.build(row) else {
                            throw CeilingProbeError("the naive relay cannot publish message \(row.id) (too large or bad headers)")
                        }
                        return record
                    }
                    for result in await producer.send(records) {
                        if case .failure(let error) = result {
                            throw CeilingProbeError("the naive relay's delivery failed: \(error.name): \(error.message)")
                        }
                    }
                    var ids = PostgresBindings(capacity: 1)
                    ids.append(rows.map(\.id))
                    try await connection.query(PostgresQuery(unsafeSQL: delete, binds: ids), logger: logger)
                    return rows.count
            }
            if count == 0 { return moved }
            moved += count
        }
    }
}
