extension Migration {
    /// The initial outbox schema.
    ///
    /// Table settings, and why:
    /// - `messages` rows live for milliseconds to seconds (insert, read once, delete once), so the
    ///   table is mostly dead tuples between vacuums. Autovacuum is told to run after a fixed number
    ///   of dead rows rather than a fraction of a table whose size swings from millions to zero, and
    ///   without cost-based sleeping, so a backlog's dead rows are reclaimed promptly. `fillfactor`
    ///   stays at 100: rows are never updated on the hot path (only on a retry).
    /// - `lanes` is 256 tiny rows renewed every few seconds: `fillfactor = 50` leaves room on each
    ///   page for the new row version, so renewals stay HOT updates and never touch the index.
    /// - `lane` is a stored generated column: `lane_of(key, id)`, the first 32 bits of md5(key)
    ///   modulo 256 (a function any language has), or `id % 256` for messages without a key.
    /// - The partial index on retried rows keeps the "is an earlier message of this key waiting for
    ///   a retry?" check of every batch read to a probe of a (normally empty) index.
    static let v1Initial = Migration(
        version: 1,
        name: "initial outbox schema",
        sql: """
            CREATE FUNCTION {schema}.lane_of(key bytea, id bigint) RETURNS smallint
                LANGUAGE sql IMMUTABLE PARALLEL SAFE
                RETURN CASE WHEN key IS NULL THEN (id % 256)::smallint
                            ELSE (('x' || substr(md5(key), 1, 8))::bit(32)::bigint % 256)::smallint END;

            CREATE TABLE {schema}.messages (
                id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                topic        text        NOT NULL,
                key          bytea,
                lane         smallint    NOT NULL GENERATED ALWAYS AS ({schema}.lane_of(key, id)) STORED,
                payload      bytea       NOT NULL,
                headers      jsonb       NOT NULL DEFAULT '{}',
                content_type text,
                type         text,
                created_at   timestamptz NOT NULL DEFAULT now(),
                available_at timestamptz NOT NULL DEFAULT now(),
                attempts     integer     NOT NULL DEFAULT 0,
                last_error   text
            ) WITH (
                autovacuum_vacuum_scale_factor = 0.0,
                autovacuum_vacuum_threshold = 20000,
                autovacuum_vacuum_insert_scale_factor = 0.0,
                autovacuum_vacuum_insert_threshold = 50000,
                autovacuum_vacuum_cost_delay = 0
            );
            CREATE INDEX messages_lane_id ON {schema}.messages (lane, id);
            CREATE INDEX messages_retrying ON {schema}.messages (lane, key, id) WHERE attempts > 0;

            CREATE TABLE {schema}.lanes (
                lane             smallint PRIMARY KEY,
                owner            text,
                epoch            bigint NOT NULL DEFAULT 0,
                lease_expires_at timestamptz
            ) WITH (fillfactor = 50);
            INSERT INTO {schema}.lanes (lane) SELECT g FROM generate_series(0, 255) AS g;

            CREATE TABLE {schema}.relays (
                id           text PRIMARY KEY,
                host         text NOT NULL,
                pid          integer NOT NULL,
                version      text NOT NULL,
                started_at   timestamptz NOT NULL DEFAULT now(),
                heartbeat_at timestamptz NOT NULL DEFAULT now()
            ) WITH (fillfactor = 50);

            CREATE TABLE {schema}.dead_letters (
                id           bigint PRIMARY KEY,
                topic        text        NOT NULL,
                key          bytea,
                lane         smallint    NOT NULL,
                payload      bytea       NOT NULL,
                headers      jsonb       NOT NULL,
                content_type text,
                type         text,
                created_at   timestamptz NOT NULL,
                dead_at      timestamptz NOT NULL DEFAULT now(),
                attempts     integer     NOT NULL,
                reason       text        NOT NULL,
                error        text        NOT NULL,
                relay        text,
                status       text        NOT NULL DEFAULT 'dead'
                             CHECK (status IN ('dead', 'replayed', 'purged')),
                replayed_at  timestamptz,
                replay_id    bigint
            );
            CREATE INDEX dead_letters_dead_at ON {schema}.dead_letters (dead_at);
            CREATE INDEX dead_letters_topic_reason ON {schema}.dead_letters (topic, reason);

            -- The public enqueue API: call it inside your own transaction; the message is published
            -- only if that transaction commits. Returns the outbox id (the envelope's sequence).
            CREATE FUNCTION {schema}.enqueue(
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
                INSERT INTO {schema}.messages (topic, key, payload, headers, type, content_type)
                VALUES (enqueue.topic, convert_to(enqueue.key, 'UTF8'), enqueue.payload,
                        coalesce(enqueue.headers, '{}'), enqueue.type, enqueue.content_type)
                RETURNING id INTO new_id;
                -- Wakes idle relays at commit; identical notifications in one transaction fold into one.
                PERFORM pg_notify('{schema}_messages', '');
                RETURN new_id;
            END
            $fn$;
            """
    )
}
