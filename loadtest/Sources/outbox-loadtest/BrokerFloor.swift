import Foundation
import Logging
@_spi(Benchmark) import OutboxRelay
import Synchronization

/// The latency a relay cannot beat on this machine: records produced at the same rate by the
/// relay's producer (same settings), straight to the broker, and followed by the same consumer —
/// no database, no relay. `steady` measures it beside the real run, so commit → consume reads
/// against what the broker and the consumer alone take here.
struct BrokerFloor {
    let context: LoadtestContext
    var rate: Int
    var duration: Duration

    func measure() async throws -> RunReport.LatencySummary? {
        let logger = context.logger
        let topic = "loadtest-floor-\(context.stamp)"
        let producer = try KafkaProducer(configuration: context.producerConfiguration, logger: logger)
        let log = FloorLog()
        do {
            let warmUp = await producer.send([KafkaRecord(topic: topic, key: nil, value: Self.value(-1))])
            guard case .success = warmUp.first else { throw LoadtestError("the broker-floor probe could not produce to \(topic)") }
            let (brokers, properties) = (context.brokers, context.settings.kafkaProperties)
            let total = Int((duration.seconds * Double(rate)).rounded())
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await KafkaTopicReader.follow(
                        topic: topic, bootstrapServers: brokers, properties: properties, waitForTopic: .seconds(30),
                        logger: logger, shouldStop: { log.shouldStop }, onRecord: { log.arrived($0) })
                }
                defer { log.stop() }
                let ready = ContinuousClock.now + .seconds(30)
                while !log.hasArrived(-1) {
                    guard ContinuousClock.now < ready else { throw LoadtestError("the broker-floor consumer saw nothing within 30 s") }
                    try await Task.sleep(for: .milliseconds(20))
                }
                let t0 = ContinuousClock.now + .milliseconds(50)
                try await withThrowingTaskGroup(of: Void.self) { senders in
                    for i in 0..<total {
                        let due = t0 + .microseconds(Int64(Double(i) * 1_000_000 / Double(rate)))
                        try await Task.sleep(until: due, clock: .continuous)
                        log.sent(i, at: .now)
                        senders.addTask { _ = await producer.send([KafkaRecord(topic: topic, key: Array("key-\(i % 1000)".utf8), value: Self.value(i))]) }
                    }
                    try await senders.waitForAll()
                }
                let settle = ContinuousClock.now + .seconds(30)
                while log.arrivedCount < total + 1, ContinuousClock.now < settle {
                    try await Task.sleep(for: .milliseconds(20))
                }
                log.stop()
                try await group.waitForAll()
            }
            await producer.close(flushTimeout: .seconds(5))
        } catch {
            await producer.close(flushTimeout: .seconds(5))
            throw error
        }
        return RunReport.LatencySummary(log.latenciesMilliseconds)
    }

    private static func value(_ index: Int) -> [UInt8] {
        withUnsafeBytes(of: Int64(index).bigEndian) { Array($0) }
    }
}

/// Send and arrival times of the broker-floor records, by index.
private final class FloorLog: Sendable {
    private struct State {
        var sent: [Int: ContinuousClock.Instant] = [:]
        var arrived: [Int: ContinuousClock.Instant] = [:]
    }
    private let state = Mutex(State())
    private let stopFlag = Mutex(false)

    func sent(_ index: Int, at instant: ContinuousClock.Instant) { state.withLock { $0.sent[index] = instant } }

    func arrived(_ record: ConsumedRecord) {
        let now = ContinuousClock.now
        guard record.value.count == 8 else { return }
        let index = Int(record.value.reduce(Int64(0)) { $0 << 8 | Int64($1) })
        state.withLock { if $0.arrived[index] == nil { $0.arrived[index] = now } }
    }

    func hasArrived(_ index: Int) -> Bool { state.withLock { $0.arrived[index] != nil } }
    var arrivedCount: Int { state.withLock { $0.arrived.count } }
    var latenciesMilliseconds: [Double] {
        state.withLock { state in
            state.sent.compactMap { index, sent in state.arrived[index].map { max(($0 - sent).seconds * 1000, 0) } }
        }
    }

    func stop() { stopFlag.withLock { $0 = true } }
    var shouldStop: Bool { stopFlag.withLock { $0 } }
}
