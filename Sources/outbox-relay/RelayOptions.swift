import ArgumentParser

/// The relay's tuning flags, shared by `run` and `config check` so that checking a command line
/// checks exactly what `run` would use.
struct RelayOptions: ParsableArguments {
    @Option(name: .customLong("relay-id"), help: "Unique name of this relay (OUTBOX_RELAY_ID; default host-pid-random).")
    var relayID: String?
    @Option(help: "Envelope source and id prefix (OUTBOX_SOURCE, default outbox).")
    var source: String?
    @Option(name: .customLong("batch-size"), help: "Messages per batch (OUTBOX_BATCH_SIZE, default 1000).")
    var batchSize: String?
    @Option(
        name: .customLong("batch-max-bytes"),
        help: "Payload and key bytes one batch may read, e.g. 16MiB (OUTBOX_BATCH_MAX_BYTES, default 16MiB).")
    var batchMaxBytes: String?
    @Option(name: .customLong("lease-ttl"), help: "Lane lease lifetime (OUTBOX_LEASE_TTL, default 15s).")
    var leaseTTL: String?
    @Option(name: .customLong("renew-interval"), help: "Lease renewal period (OUTBOX_RENEW_INTERVAL, default 5s).")
    var renewInterval: String?
    @Option(name: .customLong("poll-interval"), help: "Idle poll period (OUTBOX_POLL_INTERVAL, default 1s).")
    var pollInterval: String?
    @Option(
        name: .customLong("read-walk"),
        help: "How batch reads walk the held lanes: auto, id-order or per-lane (OUTBOX_READ_WALK, default auto).")
    var readWalk: String?
    @Option(name: .customLong("max-message-bytes"), help: "Largest encoded envelope (OUTBOX_MAX_MESSAGE_BYTES, default 1000000).")
    var maxMessageBytes: String?
    @Option(name: .customLong("max-attempts"), help: "Attempts before dead-lettering (OUTBOX_MAX_ATTEMPTS, default 10).")
    var maxAttempts: String?
    @Option(name: .customLong("retry-base"), help: "First retry delay bound (OUTBOX_RETRY_BASE, default 500ms).")
    var retryBase: String?
    @Option(name: .customLong("retry-max"), help: "Largest retry delay (OUTBOX_RETRY_MAX, default 60s).")
    var retryMax: String?
    @Option(name: .customLong("kafka-message-timeout"), help: "librdkafka delivery timeout (OUTBOX_KAFKA_MESSAGE_TIMEOUT, default 30s).")
    var kafkaMessageTimeout: String?
    @Option(
        name: .customLong("http-address"),
        help: "host:port of /healthz, /readyz and /metrics, or off (OUTBOX_HTTP_ADDRESS, default 127.0.0.1:9464).")
    var httpAddress: String?
    @Option(
        name: .customLong("database-statement-timeout"),
        help: "Server-side statement_timeout of the relay's sessions (OUTBOX_DATABASE_STATEMENT_TIMEOUT, default 30s).")
    var databaseStatementTimeout: String?
    @Option(
        name: .customLong("database-lock-timeout"),
        help: "Server-side lock_timeout of the relay's sessions (OUTBOX_DATABASE_LOCK_TIMEOUT, default 10s).")
    var databaseLockTimeout: String?
    @Option(
        name: .customLong("stall-limit"),
        help: "Batch-loop silence after which the relay hands back its lanes and exits with status 3 (OUTBOX_STALL_LIMIT, default message timeout + 20s).")
    var stallLimit: String?

    /// The flags by `OUTBOX_*` name, for ``GlobalOptions/settings(extra:)``.
    var values: [String: String?] {
        [
            "OUTBOX_RELAY_ID": relayID, "OUTBOX_SOURCE": source, "OUTBOX_BATCH_SIZE": batchSize,
            "OUTBOX_BATCH_MAX_BYTES": batchMaxBytes,
            "OUTBOX_LEASE_TTL": leaseTTL, "OUTBOX_RENEW_INTERVAL": renewInterval, "OUTBOX_POLL_INTERVAL": pollInterval,
            "OUTBOX_MAX_MESSAGE_BYTES": maxMessageBytes, "OUTBOX_MAX_ATTEMPTS": maxAttempts,
            "OUTBOX_RETRY_BASE": retryBase, "OUTBOX_RETRY_MAX": retryMax,
            "OUTBOX_KAFKA_MESSAGE_TIMEOUT": kafkaMessageTimeout, "OUTBOX_HTTP_ADDRESS": httpAddress,
            "OUTBOX_DATABASE_STATEMENT_TIMEOUT": databaseStatementTimeout, "OUTBOX_DATABASE_LOCK_TIMEOUT": databaseLockTimeout,
            "OUTBOX_STALL_LIMIT": stallLimit, "OUTBOX_READ_WALK": readWalk,
        ]
    }
}
