import Foundation
import Logging
import PostgresNIO

/// Where the database's time went during a run, from `pg_stat_statements` when the server has it
/// loaded (`shared_preload_libraries`; scripts/services does): the relay's statements by total
/// execution time. Without the extension the report simply has no such section.
struct StatementProfile {
    let client: PostgresClient
    let logger: Logger

    /// Creates the extension if needed and zeroes its counters; false when it is not available.
    func reset() async -> Bool {
        do {
            try await client.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", logger: logger)
            try await client.query("SELECT pg_stat_statements_reset()", logger: logger)
            return true
        } catch {
            Progress.line("(no statement profile: pg_stat_statements is not available: \(String(reflecting: error).prefix(120)))")
            return false
        }
    }

    /// The `limit` statements of schema `schema` that took the most execution time since `reset`.
    func top(schema: String, limit: Int = 8) async throws -> [RunReport.StatementStat] {
        var binds = PostgresBindings()
        binds.append("%\(schema).%")
        binds.append(limit)
        let rows = try await client.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT query, calls, total_exec_time, rows, shared_blks_hit + shared_blks_read FROM pg_stat_statements
                    WHERE query LIKE $1 AND query NOT LIKE '%pg_stat_statements%'
                    ORDER BY total_exec_time DESC LIMIT $2
                    """,
                binds: binds),
            logger: logger)
        var stats: [RunReport.StatementStat] = []
        for try await (query, calls, total, count, buffers) in rows.decode((String, Int64, Double, Int64, Int64).self) {
            let text = query.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
            stats.append(.init(
                statement: String(text.prefix(160)), calls: Int(calls), totalMilliseconds: total,
                meanMilliseconds: calls > 0 ? total / Double(calls) : 0, rows: Int(count), buffers: Int(buffers)))
        }
        return stats
    }
}
