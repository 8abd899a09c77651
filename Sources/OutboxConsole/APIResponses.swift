import OutboxRelay

/// What the JSON API answers when a call fails.
struct APIFailure: Encodable {
    var error: String
}

/// `GET /api/fleet`.
struct APIFleet: Encodable {
    var fleet: FleetSnapshot
    var throughput: [ThroughputHistory.Sample]
}

/// `GET /api/csrf`: the token a POST must send as `X-CSRF-Token`.
struct APICSRFToken: Encodable {
    var csrfToken: String
}

/// `GET /api/dead-letters`: a page, oldest id first.
struct APIDeadLetterPage: Encodable {
    var rows: [DeadLetterSummary]
    var more: Bool
    /// Pass as `after` for the next page.
    var next: Int64?
}
