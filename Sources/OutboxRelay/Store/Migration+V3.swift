extension Migration {
    /// Same-key enqueues commit in id order.
    ///
    /// Ids are assigned at insert, but the relay sees a row at commit: two transactions enqueueing
    /// for one key at the same time could commit in the opposite order of their ids, and the relay
    /// would then publish the higher id first — `sequence` going backwards for a consumer. Now
    /// `enqueue` first takes a transaction-level advisory lock on the key (`pg_advisory_xact_lock`
    /// on the schema name's hash and 32 bits of the key bytes' md5 — a formula on bytes, so `dlq
    /// replay`, which copies keys as bytes, takes the same lock), so a second transaction enqueueing the same key waits
    /// until the first one commits or rolls back, and gets its id only then: per key, commit order
    /// is id order. Messages without a key are not ordered and take no lock.
    ///
    /// Costs, documented in the README: a transaction enqueueing a key holds its lock until it ends,
    /// so same-key enqueuers serialize (other keys are untouched); two transactions enqueueing two
    /// keys in opposite orders deadlock (PostgreSQL aborts one after `deadlock_timeout`; enqueue a
    /// transaction's keys in a consistent order, as `OutboxWriter` does for a batch); every distinct
    /// key is one lock until commit, so a transaction enqueueing many thousands of distinct keys
    /// needs a larger `max_locks_per_transaction` — or `SET LOCAL outbox.serialize_keys = off` for a
    /// bulk load nothing else enqueues into concurrently.
    static let v3SerializedKeys = Migration(
        version: 3,
        name: "same-key enqueues commit in id order",
        sql: """
            -- CREATE OR REPLACE resets SECURITY DEFINER and SET search_path, which the least-privilege
            -- roles (deploy/sql/roles.sql) put on this function: keep them, or applications
            -- enqueueing as the app role would fail from this migration until roles.sql ran again.
            DO $migration$
            DECLARE
                was_definer boolean;
            BEGIN
                SELECT p.prosecdef INTO was_definer FROM pg_proc p
                WHERE p.oid = '{schema}.enqueue(text, text, bytea, jsonb, text, text)'::regprocedure;
                EXECUTE $create$
                CREATE OR REPLACE FUNCTION {schema}.enqueue(
                    topic text, key text, payload bytea,
                    headers jsonb DEFAULT '{}', type text DEFAULT NULL, content_type text DEFAULT NULL
                ) RETURNS bigint LANGUAGE plpgsql AS $fn$
                DECLARE
                    new_id bigint;
                BEGIN
                    IF enqueue.topic IS NULL OR enqueue.topic = '' THEN
                        RAISE EXCEPTION 'outbox enqueue: topic must not be empty'
                            USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                    IF enqueue.payload IS NULL THEN
                        RAISE EXCEPTION 'outbox enqueue: payload must not be NULL (use an empty bytea)'
                            USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                    IF enqueue.headers IS NOT NULL AND jsonb_typeof(enqueue.headers) <> 'object' THEN
                        RAISE EXCEPTION 'outbox enqueue: headers must be a JSON object of strings, got %',
                            jsonb_typeof(enqueue.headers) USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                    -- Before the id is taken: a concurrent enqueuer of this key commits first, or waits.
                    IF enqueue.key IS NOT NULL AND coalesce(current_setting('outbox.serialize_keys', true), '') <> 'off' THEN
                        PERFORM pg_advisory_xact_lock(hashtext('{schema}'),
                            ('x' || substr(md5(convert_to(enqueue.key, 'UTF8')), 9, 8))::bit(32)::int);
                    END IF;
                    INSERT INTO {schema}.messages (topic, key, payload, headers, type, content_type)
                    VALUES (enqueue.topic, convert_to(enqueue.key, 'UTF8'), enqueue.payload,
                            coalesce(enqueue.headers, '{}'), enqueue.type, enqueue.content_type)
                    RETURNING id INTO new_id;
                    -- Wakes idle relays at commit; identical notifications in one transaction fold into one.
                    PERFORM pg_notify('{schema}_messages', '');
                    RETURN new_id;
                END
                $fn$;
                $create$;
                IF was_definer THEN
                    ALTER FUNCTION {schema}.enqueue(text, text, bytea, jsonb, text, text)
                        SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
                END IF;
            END
            $migration$;
            """
    )
}
