extension Migration {
    /// `enqueue` notifies only while a relay waits for a notification.
    ///
    /// A transaction that called `pg_notify` takes a database-wide lock at commit (PostgreSQL
    /// queues notifications in commit order), so every notifying commit of the database waits for
    /// the one before it. With every enqueue notifying, that lock capped the applications' write
    /// rate (measured: 8 clients committed 5.1-5.7k enqueues per second against 7.9k plain
    /// INSERTs of the same row, on 2 cores) — a tax on every business transaction, paid most
    /// when the relays need the wake-up least: under load they are reading anyway.
    ///
    /// Now a relay says when it wants one: `relays.wants_wakeup` is set once it has found nothing
    /// for a few milliseconds (it polls on its own until then, see `IdleSchedule`) and cleared when
    /// it finds work. `enqueue` reads the flag (a scan of a few rows) and notifies only if some
    /// relay has it set. The flag is read when `enqueue` is called, not at commit: a transaction
    /// that enqueued before a relay set its flag and commits after the relay's next read is not
    /// notified, and is found by the relay's polls, which double from when it went idle — so
    /// such a row waits about as long again as its transaction was still open, never the whole
    /// poll interval (`IdleSchedule`).
    ///
    /// `enqueue` also locks its key itself instead of calling `lock_keys` (same locks, same
    /// levels): that call, a SECURITY DEFINER function with its own search_path and queries over
    /// an array of one key, cost more than the insert (measured: 8 pgbench clients, one keyed
    /// enqueue per transaction, 5.9k/s with the call against 7.4k/s with the locks inline and 7.5k/s
    /// for a plain INSERT in the same transaction shape).
    ///
    /// `enqueue` as SECURITY INVOKER (no deploy/sql/roles.sql) needs SELECT on `relays` for
    /// the caller; roles.sql makes it SECURITY DEFINER, which needs nothing more.
    static let v6WakeOnDemand = Migration(
        version: 6,
        name: "enqueue notifies only while a relay waits for it, and locks its key inline",
        sql: """
            ALTER TABLE {schema}.relays ADD COLUMN wants_wakeup boolean NOT NULL DEFAULT false;

            -- CREATE OR REPLACE resets SECURITY DEFINER and SET search_path (see migration 3).
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
                    k bytea;
                    mode text;
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
                    -- Before the id is taken: a concurrent enqueuer of this key commits first, or
                    -- waits. Exactly lock_keys(ARRAY[k]) (migration 3), without its second function
                    -- call and its queries over an array of one.
                    IF enqueue.key IS NOT NULL THEN
                        k := convert_to(enqueue.key, 'UTF8');
                        mode := current_setting('outbox.serialize_keys', true);
                        IF mode = 'lanes' THEN
                            PERFORM pg_advisory_xact_lock(hashtext('{schema}.lanes'), {schema}.lane_of(k, 0));
                        ELSIF mode IS DISTINCT FROM 'off' THEN
                            -- One key: the transaction's level is `keys` from its first enqueue on.
                            IF mode IS DISTINCT FROM 'keys' THEN
                                PERFORM set_config('outbox.serialize_keys', 'keys', true);
                            END IF;
                            PERFORM pg_advisory_xact_lock_shared(hashtext('{schema}.lanes'), {schema}.lane_of(k, 0)),
                                    pg_advisory_xact_lock(hashtext('{schema}'), ('x' || substr(md5(k), 9, 8))::bit(32)::int);
                        END IF;
                    END IF;
                    INSERT INTO {schema}.messages (topic, key, payload, headers, type, content_type)
                    VALUES (enqueue.topic, k, enqueue.payload,
                            coalesce(enqueue.headers, '{}'), enqueue.type, enqueue.content_type)
                    RETURNING id INTO new_id;
                    -- Wakes a relay at commit, only if one is waiting for it (a notifying commit
                    -- serializes with every other one); notifications in one transaction fold into one.
                    IF EXISTS (SELECT 1 FROM {schema}.relays WHERE wants_wakeup) THEN
                        PERFORM pg_notify('{schema}_messages', '');
                    END IF;
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
