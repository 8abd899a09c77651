extension Duration {
    /// Whole milliseconds, for SQL intervals and the page's refresh attribute.
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
