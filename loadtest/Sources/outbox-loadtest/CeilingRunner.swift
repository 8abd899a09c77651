import Foundation
import Logging
@_spi(Benchmark) import OutboxRelay
import PostgresNIO

/// Measures this machine's two limits for a relay with the relay's own parts (see `CeilingProbes`):
/// run in the same process and minutes as the relay figures they are compared with.
struct CeilingRunner {
    let context: LoadtestContext
    let client: PostgresClient
    var messages: Int
    var keys: Int
    var payloadBytes: Int
    var batchSize: Int
    var inFlight: Int

    func measure() async throws -> RunReport.CeilingFigures {
        let logger = context.logger
        let seeder = Seeder(client: client, schema: context.schema, logger: logger)
        Progress.line("ceiling: seeding \(messages) messages for the database probe…")
        _ = try await seeder.seed(
            topic: "loadtest-ceiling-db-\(context.stamp)", count: messages, keys: keys, payloadBytes: payloadBytes)
        try await client.query(PostgresQuery(unsafeSQL: "VACUUM ANALYZE \(context.schema.rawValue).messages"), logger: logger)
        Progress.line("ceiling: database probe (relay read + fenced delete, batch \(batchSize), no broker)…")
        let database = try await CeilingProbes.database(
            client: client, schema: context.schema, batchSize: batchSize, logger: logger)
        guard database.messages == messages else {
            throw LoadtestError("the database probe moved \(database.messages) of \(messages) messages")
        }
        Progress.line(String(format: "ceiling: database %@", RunReport.rate(database.rate)))
        try await client.query(PostgresQuery(unsafeSQL: "VACUUM \(context.schema.rawValue).messages"), logger: logger)

        Progress.line("ceiling: produce probe, one batch at a time (relay envelopes and producer, no database)…")
        let oneBatch = try await CeilingProbes.produce(
            configuration: context.producerConfiguration, topic: "loadtest-ceiling-one-\(context.stamp)",
            messages: messages, keys: keys, payloadBytes: payloadBytes, batchSize: batchSize, inFlight: 1, logger: logger)
        Progress.line(String(format: "ceiling: produce, one batch at a time %@", RunReport.rate(oneBatch.rate)))
        Progress.line("ceiling: produce probe, \(inFlight) batches in flight…")
        let streaming = try await CeilingProbes.produce(
            configuration: context.producerConfiguration, topic: "loadtest-ceiling-stream-\(context.stamp)",
            messages: messages, keys: keys, payloadBytes: payloadBytes, batchSize: batchSize, inFlight: inFlight,
            logger: logger)
        Progress.line(String(format: "ceiling: produce, %d in flight %@", inFlight, RunReport.rate(streaming.rate)))
        return RunReport.CeilingFigures(
            messages: messages, database: database, produceOneBatch: oneBatch, produceStreaming: streaming,
            produceInFlight: inFlight)
    }
}
