extension Migration {
    /// Every insert into `messages` takes its transaction id before it takes an outbox id.
    ///
    /// The relay's reads start after the last id it knows to be settled in its lanes (see
    /// `LaneCursors`) instead of walking every dead index entry from the start of the table. That
    /// is only safe up to ids no open transaction can still commit — ids are drawn at insert and
    /// become visible at commit, so a transaction that drew id 100 may commit after id 101 was read,
    /// published and deleted. The relay knows which ids are final from snapshots (`Frontier`): once
    /// every transaction running when it saw id N has ended, every id below N is committed or
    /// never will be — provided each of those transactions already had its transaction id when it
    /// drew its outbox id. PostgreSQL assigns a transaction id at the first write, which for an
    /// INSERT comes *after* the identity default is evaluated. This statement trigger closes that
    /// gap: it fires before any row of the statement (before any id is drawn) and takes the
    /// transaction id then. It costs one function call per INSERT statement, not per row, and
    /// covers every way rows arrive: `enqueue`, `OutboxWriter`, plain INSERTs, COPY, `dlq replay`.
    ///
    /// `ENABLE ALWAYS`: it fires under `session_replication_role = replica` too (logical
    /// replication into the outbox). `pg_restore --disable-triggers` still disables it: restore
    /// into a schema no relay reads, or without that option.
    ///
    /// `CACHE 1` (the identity's default, stated here because the frontier needs it): ids are
    /// drawn in time order across sessions. With a cache, each session draws from its own block
    /// and a lower id can be drawn after a higher one.
    static let v5TransactionBeforeID = Migration(
        version: 5,
        name: "inserts take their transaction id before their outbox id",
        sql: """
            CREATE FUNCTION {schema}.take_transaction_id() RETURNS trigger LANGUAGE plpgsql AS $fn$
            BEGIN
                PERFORM pg_current_xact_id();
                RETURN NULL;
            END
            $fn$;
            CREATE TRIGGER messages_take_transaction_id BEFORE INSERT ON {schema}.messages
                FOR EACH STATEMENT EXECUTE FUNCTION {schema}.take_transaction_id();
            ALTER TABLE {schema}.messages ENABLE ALWAYS TRIGGER messages_take_transaction_id;
            ALTER TABLE {schema}.messages ALTER COLUMN id SET CACHE 1;
            """
    )
}
