import Foundation
import Logging
import NIOCore
import Outbox
import PostgresNIO

/// The two limits a relay's throughput is judged against, measured with the relay's own parts.
///
/// A relay can never publish faster than the database lets it read and delete rows, nor faster
/// than its producer can get records acknowledged. `outbox-loadtest` measures both on the machine
/// under test, in the same run as the relay, so a result reads "72 % of this machine's limit"
/// rather than a number that means nothing elsewhere. Both probes use the relay's real code
/// paths — the same statements (`RelayStore`), envelope builder and producer — minus the other
/// half, so they are exposed to the load test only (`@_spi(Benchmark)`), not as public API.
@_spi(Benchmark)
public enum CeilingProbes {
    /// Messages moved and the time it took.
    public struct Result: Sendable, Codable {
        public var messages: Int
        public var seconds: Double
        public var rate: Double { seconds > 0 ? Double(messages) / seconds : 0 }
    }

    /// The database half: claim every lane, then read a batch and delete it by the fenced
    /// acknowledgement, in a loop, until the schema's outbox is empty. No broker involved.
    ///
    /// The schema must hold only the probe's rows and no relay may run on it (the probe holds all
    /// lanes for its duration and releases them at the end).
    public static func database(
        client: PostgresClient, schema: SchemaName, batchSize: Int, logger: Logger
    ) async throws -> Result {
        let store = RelayStore(client: client, schema: schema, relayID: "ceiling-probe-\(UInt32.random(in: 0...UInt32.max))")
        let leases = try await store.claim(count: LaneHash.laneCount, ttl: .seconds(600), logger: logger)
        guard leases.count == LaneHash.laneCount else {
            _ = try? await store.releaseAllOwned(logger: logger)
            throw CeilingProbeError("only \(leases.count) of \(LaneHash.laneCount) lanes were free in schema \(schema): stop the relays on it first")
        }
        let lanes = leases.map(\.lane)
        let clock = ContinuousClock()
        let started = clock.now
        var moved = 0
        // Reads start where the relay's would (its lane cursors), so the ceiling is its SQL's.
        var cursors = LaneCursors()
        cursors.sync(with: leases)
        do {
            while true {
                let read = try await store.readBatch(
                    lanes: lanes, limit: batchSize, after: cursors.start(for: lanes), logger: logger)
                cursors.observe(read, lanes: lanes, limit: batchSize)
                if read.rows.isEmpty { break }
                let ids = read.rows.map(\.id)
                let acked = try await store.ack(ids: ids, leases: leases, logger: logger)
                moved += acked.rows
                cursors.finished(ids, lanes: acked.lanesHeld)
                if let transaction = acked.transactionID { cursors.wrote(transaction: transaction) }
            }
        } catch {
            _ = try? await store.releaseAllOwned(logger: logger)
            throw error
        }
        let seconds = (clock.now - started).seconds
        try await store.releaseAllOwned(logger: logger)
        return Result(messages: moved, seconds: seconds)
    }

    /// The broker half: the relay's envelope builder and producer, fed rows made in memory (ids,
    /// keys and payload sizes as the load test seeds them), with up to `inFlight` batches awaiting
    /// delivery reports at once. No database involved. Fails if any record is not acknowledged.
    public static func produce(
        configuration: KafkaProducerConfiguration, topic: String, messages: Int, keys: Int, payloadBytes: Int,
        batchSize: Int, inFlight: Int, logger: Logger
    ) async throws -> Result {
        let producer = try KafkaProducer(configuration: configuration, logger: logger)
        do {
            let result = try await produce(
                with: producer, topic: topic, messages: messages, keys: keys, payloadBytes: payloadBytes,
                batchSize: batchSize, inFlight: inFlight)
            await producer.close(flushTimeout: .seconds(5))
            return result
        } catch {
            await producer.close(flushTimeout: .seconds(5))
            throw error
        }
    }

    private static func produce(
        with producer: KafkaProducer, topic: String, messages: Int, keys: Int, payloadBytes: Int,
        batchSize: Int, inFlight: Int
    ) async throws -> Result {
        let builder = EnvelopeBuilder(source: "ceiling-probe", maximumMessageBytes: 1_000_000)
        let payload = ByteBuffer(repeating: 0xAB, count: payloadBytes)
        let keyBuffers = (0..<keys).map { ByteBuffer(string: "key-\($0)") }
        let now = Date()

        // One record first, untimed: the idempotent producer's id and the topic's creation are
        // start-up costs a relay pays once too.
        _ = try await deliver([record(0)], producer: producer)

        func record(_ index: Int) -> KafkaRecord {
            let key = keyBuffers[index % keys]
            let row = PendingMessage(
                id: Int64(index + 1), topic: topic, key: key, lane: LaneHash.lane(forKey: key.readableBytesView),
                payload: payload, headersJSON: "{}", contentType: nil, type: nil, createdAt: now, attempts: 0)
            guard case .record(let record, _) = builder.build(row) else {
                preconditionFailure("a synthetic row is always publishable")
            }
            return record
        }

        let clock = ContinuousClock()
        let started = clock.now
        try await withThrowingTaskGroup(of: Int.self) { group in
            var next = 0
            var running = 0
            while next < messages || running > 0 {
                while running < inFlight && next < messages {
                    let range = next..<min(next + batchSize, messages)
                    next = range.upperBound
                    running += 1
                    // Envelopes are built on the sending task, as the relay builds them per batch.
                    group.addTask { try await deliver(range.map(record), producer: producer) }
                }
                if try await group.next() != nil { running -= 1 }
            }
        }
        return Result(messages: messages, seconds: (clock.now - started).seconds)
    }

    private static func deliver(_ records: [KafkaRecord], producer: KafkaProducer) async throws -> Int {
        let results = await producer.send(records)
        if let failure = results.first(where: { if case .failure = $0 { true } else { false } }), case .failure(let error) = failure {
            throw CeilingProbeError("the produce probe's records were not all acknowledged: \(error.name): \(error.message)")
        }
        return results.count
    }
}

@_spi(Benchmark)
public struct CeilingProbeError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
