extension Migration {
    /// The dead-letter audit trail (`outbox-relay dlq replay|purge`).
    ///
    /// - `dlq_audit` gets one row per `replay` or `purge` invocation, dry runs included
    ///   (`dry_run = true`), so "who touched the dead letters, when, with which filter" is answered
    ///   from SQL. `count` is raised by the same statement that changes each batch of dead letters,
    ///   so it always equals the rows actually changed, even when a command is interrupted halfway.
    ///   Relative time bounds in `filter` (e.g. `"since": "2h"`) are relative to `at`.
    /// - `dead_letters.audit_id` points at the audit row of the last replay or purge that changed the
    ///   row, so `dlq show` can say who replayed or purged it. `purged_at` records when the payload
    ///   was dropped (purge keeps the row's metadata as a tombstone, see `DeadLetterStore.purge`).
    /// - `dead_letters_dead` is a partial index over the rows still to be handled: replay, list and
    ///   stats default to `status = 'dead'`, and replayed or purged rows (which only accumulate)
    ///   then cost nothing to skip.
    /// - `dead_letters_replay_id` finds the dead letter an outbox message was replayed from (shown
    ///   by `dlq show` when a replayed message dies again).
    static let v2DeadLetterAudit = Migration(
        version: 2,
        name: "dead-letter audit trail",
        sql: """
            CREATE TABLE {schema}.dlq_audit (
                id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                at      timestamptz NOT NULL DEFAULT now(),
                actor   text        NOT NULL,
                action  text        NOT NULL CHECK (action IN ('replay', 'purge')),
                filter  jsonb       NOT NULL,
                count   integer     NOT NULL DEFAULT 0,
                dry_run boolean     NOT NULL
            );
            CREATE INDEX dlq_audit_at ON {schema}.dlq_audit (at);

            ALTER TABLE {schema}.dead_letters
                ADD COLUMN purged_at timestamptz,
                ADD COLUMN audit_id  bigint REFERENCES {schema}.dlq_audit (id);
            CREATE INDEX dead_letters_dead ON {schema}.dead_letters (id) WHERE status = 'dead';
            CREATE INDEX dead_letters_replay_id ON {schema}.dead_letters (replay_id) WHERE replay_id IS NOT NULL;
            """
    )
}
