/// Why a `dlq` command could not run against the database, in words that say what to do next.
public enum DeadLetterStoreError: Error, CustomStringConvertible, Equatable {
    /// The schema is missing or older than the audit trail (version 2).
    case schemaTooOld(schema: String, version: Int, needed: Int)
    /// `dlq show` for an id that is not in the dead-letter table.
    case notFound(id: Int64, schema: String)
    /// A replay or purge named a dry run to confirm that does not match it.
    case confirmationMismatch(auditID: Int64, problem: String)

    public var description: String {
        switch self {
        case .schemaTooOld(let schema, let version, let needed) where version == 0:
            return "schema \(schema) has no outbox tables (needs version \(needed)): run `outbox-relay migrate` first, or pass the right --schema"
        case .schemaTooOld(let schema, let version, let needed):
            return "schema \(schema) is at version \(version), but dead-letter commands need version \(needed) (the dlq_audit table): run `outbox-relay migrate`"
        case .notFound(let id, let schema):
            return "no dead letter with id \(id) in schema \(schema); `outbox-relay dlq list --status all` shows the ids"
        case .confirmationMismatch(let auditID, let problem):
            return "nothing changed: this confirms dry run \(auditID), but \(problem); run the dry run again and confirm that one"
        }
    }
}
