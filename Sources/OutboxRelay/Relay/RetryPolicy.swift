/// When to try a failed message again, and when to give up on it.
///
/// Exponential backoff with *full jitter* (a uniformly random delay between zero and the capped
/// exponential bound): retries of many messages that failed together spread out instead of hitting
/// a recovering broker in waves. Broker outages never reach this policy: they pause the relay
/// without spending attempts.
public struct RetryPolicy: Sendable, Hashable {
    /// The bound for the first retry; it doubles with every further attempt.
    public var baseDelay: Duration
    /// The largest delay ever chosen.
    public var maximumDelay: Duration
    /// Attempts (including the first) after which a retriable failure dead-letters the message.
    public var maximumAttempts: Int

    public init(baseDelay: Duration = .milliseconds(500), maximumDelay: Duration = .seconds(60), maximumAttempts: Int = 10) {
        self.baseDelay = baseDelay
        self.maximumDelay = maximumDelay
        self.maximumAttempts = maximumAttempts
    }

    /// The upper bound of the delay after the `attempt`-th failed attempt (1-based).
    public func delayBound(afterAttempt attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 40)
        let base = Double(baseDelay.milliseconds)
        let bound = min(base * Double(1 << UInt64(exponent)), Double(maximumDelay.milliseconds))
        return .milliseconds(Int64(bound))
    }

    /// A random delay in `0...delayBound(afterAttempt:)`.
    public func delay<R: RandomNumberGenerator>(afterAttempt attempt: Int, using random: inout R) -> Duration {
        let bound = delayBound(afterAttempt: attempt).milliseconds
        return .milliseconds(bound == 0 ? 0 : Int64.random(in: 0...bound, using: &random))
    }

    public func delay(afterAttempt attempt: Int) -> Duration {
        var random = SystemRandomNumberGenerator()
        return delay(afterAttempt: attempt, using: &random)
    }

    /// Whether a message that has now failed `attempts` times should be dead-lettered.
    public func isExhausted(afterAttempts attempts: Int) -> Bool {
        attempts >= maximumAttempts
    }
}
