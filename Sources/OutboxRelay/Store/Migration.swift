/// One versioned step of the outbox schema.
///
/// The SQL is a template: `{schema}` is replaced by the validated schema name (see `SchemaName`),
/// the only identifier ever spliced into SQL. Steps are applied in order, each once, in a single
/// transaction under an advisory lock, and recorded in `{schema}.schema_migrations`.
struct Migration: Sendable {
    let version: Int
    let name: String
    let sql: String

    func render(schema: String) -> String {
        sql.replacingOccurrences(of: "{schema}", with: schema)
    }
}

extension Migration {
    /// Every step, oldest first. Never edit a released step: add a new one.
    static let all: [Migration] = [
        .v1Initial, .v2DeadLetterAudit, .v3SerializedKeys, .v4Identity, .v5TransactionBeforeID, .v6WakeOnDemand,
        .v7RelayReadiness,
    ]

    /// The number of lanes is part of the schema contract: the lane of a key is computed by SQL at
    /// insert time, so every producer in every language agrees, and changing it would reorder keys.
    static let laneCount = 256
}
