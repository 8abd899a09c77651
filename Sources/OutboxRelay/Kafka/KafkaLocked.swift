import Foundation

/// A value guarded by a lock, for state shared between Swift tasks and librdkafka's threads
/// (which are not part of Swift concurrency, so an actor cannot be awaited from them).
///
/// `NSLock` rather than `Synchronization.Mutex` because the package still declares macOS 14, where `Mutex` is
/// unavailable. Critical sections are a few assignments: never block or call librdkafka inside `withLock` unless
/// the call is documented as non-blocking (`rd_kafka_yield`).
final class KafkaLocked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
