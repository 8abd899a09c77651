extension Duration {
    /// Whole milliseconds (truncated), for SQL intervals and librdkafka settings and timeouts.
    package var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Seconds as a floating-point number, for `Date` arithmetic (and the load test's reports).
    @_spi(Benchmark) public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
