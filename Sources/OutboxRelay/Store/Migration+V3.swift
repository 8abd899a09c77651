extension Migration {
    /// Same-key enqueues commit in id order.
    ///
    /// Ids are assigned at insert, but the relay sees a row at commit: two transactions enqueueing
    /// for one key at the same time could commit in the opposite order of their ids, and the relay
    /// would then publish the higher id first — `sequence` going backwards for a consumer. Now
    /// every enqueue first locks its key until the transaction ends (`lock_keys`, transaction-level
    /// advisory locks), so a second transaction enqueueing the same key waits until the first one
    /// commits or rolls back, and gets its id only then: per key, commit order is id order.
    /// Messages without a key are not ordered and take no lock.
    ///
    /// Two lock levels keep the lock table bounded whatever a transaction enqueues:
    /// - `keys` (the default): a shared lock on the key's lane and an exclusive lock on the key
    ///   (32 bits of the key bytes' md5 — a formula on bytes, so `dlq replay`, which copies keys as
    ///   bytes, takes the same lock). Different keys never wait for each other.
    /// - `lanes`: an exclusive lock on the key's lane. A transaction whose first enqueue call brings
    ///   more than 64 keys (`max_locks_per_transaction`'s default; an `OutboxWriter` batch, a CLI
    ///   `--count`) uses it, so a bulk enqueue takes at most 256 lane locks instead of one per key;
    ///   it then serializes with every enqueuer of those lanes. The first call decides for the whole
    ///   transaction (upgrading shared lane locks to exclusive later could deadlock two transactions),
    ///   so one that enqueues thousands of keys one call at a time should `SET LOCAL
    ///   outbox.serialize_keys = lanes` first, or it may run out of lock table.
    /// - `off` (`SET LOCAL outbox.serialize_keys = off`): no lock, for a bulk load nothing else
    ///   enqueues into concurrently.
    ///
    /// Two transactions enqueueing two keys in opposite orders deadlock (PostgreSQL aborts one after
    /// `deadlock_timeout`): a batch locks all its keys first, in a fixed order, so one `OutboxWriter`
    /// call never does; across calls, enqueue in a consistent order.
    static let v3SerializedKeys = Migration(
        version: 3,
        name: "same-key enqueues commit in id order",
        sql: """
            -- CREATE OR REPLACE resets SECURITY DEFINER and SET search_path, which the least-privilege
            -- roles (deploy/sql/roles.sql) put on this function: keep them, or applications
            -- enqueueing as the app role would fail from this migration until roles.sql ran again.
            -- Locks `keys` until the transaction ends, lanes shared then keys exclusive (or lanes
            -- exclusive), each in a fixed order. SECURITY DEFINER: it reads no table, and callers need
            -- no grant on lane_of.
            CREATE FUNCTION {schema}.lock_keys(keys bytea[]) RETURNS void LANGUAGE plpgsql
                SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
            DECLARE
                mode text := coalesce(nullif(current_setting('outbox.serialize_keys', true), ''), '');
                wanted integer;
            BEGIN
                IF mode = 'off' OR keys IS NULL THEN
                    RETURN;
                END IF;
                IF mode NOT IN ('keys', 'lanes') THEN
                    -- The transaction's first call picks the level, kept to its end: switching from
                    -- shared to exclusive lane locks later would let two transactions deadlock.
                    SELECT count(DISTINCT k) INTO wanted FROM unnest(keys) AS k WHERE k IS NOT NULL;
                    IF wanted = 0 THEN
                        RETURN;
                    END IF;
                    mode := CASE WHEN wanted > 64 THEN 'lanes' ELSE 'keys' END;
                    PERFORM set_config('outbox.serialize_keys', mode, true);
                END IF;
                IF mode = 'lanes' THEN
                    PERFORM pg_advisory_xact_lock(hashtext('{schema}.lanes'), s.lane)
                    FROM (SELECT DISTINCT {schema}.lane_of(k, 0) AS lane FROM unnest(keys) AS k
                          WHERE k IS NOT NULL ORDER BY 1) s;
                ELSE
                    PERFORM pg_advisory_xact_lock_shared(hashtext('{schema}.lanes'), s.lane)
                    FROM (SELECT DISTINCT {schema}.lane_of(k, 0) AS lane FROM unnest(keys) AS k
                          WHERE k IS NOT NULL ORDER BY 1) s;
                    PERFORM pg_advisory_xact_lock(hashtext('{schema}'), s.hash)
                    FROM (SELECT DISTINCT ('x' || substr(md5(k), 9, 8))::bit(32)::int AS hash FROM unnest(keys) AS k
                          WHERE k IS NOT NULL ORDER BY 1) s;
                END IF;
            END
            $fn$;

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
                    IF enqueue.key IS NOT NULL THEN
                        PERFORM {schema}.lock_keys(ARRAY[convert_to(enqueue.key, 'UTF8')]);
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
