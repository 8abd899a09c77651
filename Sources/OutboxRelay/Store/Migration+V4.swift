extension Migration {
    /// The outbox's envelope `source`, recorded once for every relay.
    ///
    /// Envelope ids are `<source>/<outbox id>` and consumers deduplicate on them, so the id of a
    /// message must not depend on which relay publishes it. The first relay to start records its
    /// source here (the default `outbox` if none is configured); later relays use the recorded one,
    /// and a relay configured with a different `OUTBOX_SOURCE` refuses to start. Changing it is an
    /// operator's decision (`UPDATE {schema}.identity SET source = …`), which changes every id
    /// published from then on.
    static let v4Identity = Migration(
        version: 4,
        name: "recorded envelope source",
        sql: """
            CREATE TABLE {schema}.identity (
                singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                source      text        NOT NULL CHECK (source <> ''),
                recorded_at timestamptz NOT NULL DEFAULT now(),
                recorded_by text        NOT NULL
            );
            """
    )
}
