import Foundation

/// Runs blocking librdkafka calls (metadata requests, consumer polls, flush, destroy) on a thread of their own.
///
/// These calls block for up to their timeout; doing that on Swift's cooperative pool (2 threads on the target
/// machines) would stall every other task of the relay, including lease renewals.
enum KafkaDedicatedThread {
    /// Starts a thread named `name`, runs `body` on it, and returns its result once it finished.
    static func run<T: Sendable, E: Error>(
        name: String,
        _ body: @escaping @Sendable () throws(E) -> T
    ) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            start(name: name) {
                do throws(E) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }

    /// Starts a long-lived thread (e.g. the producer's poll loop) without waiting for it.
    static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.name = name
        thread.start()
    }
}
