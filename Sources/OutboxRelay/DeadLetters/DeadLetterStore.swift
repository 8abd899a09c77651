import Foundation
import Logging
import NIOCore
import Outbox
import PostgresNIO

/// Every statement of the `dlq` commands, kept together so the replay and purge protocol can be
/// read (and reviewed) in one place.
///
/// **Exactly once under concurrency.** `replay` and `purge` pick their rows with
/// `status = 'dead' … ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED` and change them in the same
/// statement. Two operators running the same command at the same time therefore split the rows:
/// a row locked by one is skipped by the other, and a row the other already changed and committed
/// is re-checked by PostgreSQL when it is locked (READ COMMITTED re-evaluates the `WHERE` on the
/// newest row version) and no longer matches `status = 'dead'`. So every dead letter is replayed
/// (or purged) by exactly one statement, and every statement also adds its own row count to its
/// invocation's audit row, so the audit counts add up to the rows changed.
///
/// **Batches.** A replay moves `batchSize` rows per statement; each statement commits on its own,
/// so locks are short and relays publish the first batch while later ones are still being moved.
/// An interrupted replay has replayed exactly what its audit row counts, and can simply be run
/// again. Each command walks the ids upwards (`id > last id handled`), so it never rescans rows it
/// has passed.
///
/// **Ordering rule.** A replayed message gets a *new* outbox id, larger than every id already
/// assigned: it is published after everything already pending for its key (and after anything
/// enqueued for that key while it sat in the dead-letter table). Dead letters of one key replayed
/// by one command keep their relative order (new ids are handed out in dead-letter id order).
/// Two replays running at the same time over dead letters of the *same* key may interleave them.
public struct DeadLetterStore: Sendable {
    public let client: PostgresClient
    public let schema: SchemaName

    /// The schema version the `dlq` commands need (`dlq_audit`, `dead_letters.audit_id`).
    public static let requiredSchemaVersion = 2
    /// How many matches a dry run lists (the count is always complete).
    public static let dryRunSampleSize = 50

    public init(client: PostgresClient, schema: SchemaName) {
        self.client = client
        self.schema = schema
    }

    private var s: String { schema.rawValue }

    // MARK: Reading

    /// The first `limit` dead letters matching `filter` with ids above `after`, oldest id first,
    /// and whether more match (a page; the next one starts after the last id of this one).
    public func list(_ filter: DeadLetterFilter, limit: Int, after: Int64 = 0, logger: Logger) async throws -> (
        rows: [DeadLetterSummary], more: Bool
    ) {
        try await requireSchema(logger: logger)
        let rows = try await summaries(filter, limit: limit + 1, after: after, logger: logger)
        return (Array(rows.prefix(limit)), rows.count > limit)
    }

    /// Counts and time span per topic and reason.
    public func stats(_ filter: DeadLetterFilter, logger: Logger) async throws -> DeadLetterStats {
        try await requireSchema(logger: logger)
        var binds = PostgresBindings()
        let condition = filter.condition(binds: &binds)
        let rows = try await client.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT d.topic, d.reason, count(*), min(d.dead_at), max(d.dead_at)
                    FROM \(s).dead_letters d
                    WHERE \(condition)
                    GROUP BY d.topic, d.reason
                    ORDER BY count(*) DESC, d.topic, d.reason
                    """, binds: binds), logger: logger)
        var groups: [DeadLetterStats.Group] = []
        for try await (topic, reason, count, oldest, newest) in rows.decode((String, String, Int64, Date, Date).self) {
            groups.append(.init(topic: topic, reason: reason, count: count, oldestDeadAt: oldest, newestDeadAt: newest))
        }
        return DeadLetterStats(groups: groups)
    }

    /// Everything about one dead letter; throws `DeadLetterStoreError.notFound` for an unknown id.
    public func show(id: Int64, logger: Logger) async throws -> DeadLetter {
        try await requireSchema(logger: logger)
        var binds = PostgresBindings()
        binds.append(id)
        let rows = try await client.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT \(Self.summaryColumns), d.lane, d.headers::text, d.content_type, d.type, d.relay,
                           d.purged_at, d.payload,
                           a.id, a.at, a.actor, a.action, a.count, a.dry_run, a.filter::text,
                           (SELECT o.id FROM \(s).dead_letters o WHERE o.replay_id = d.id ORDER BY o.id DESC LIMIT 1),
                           CASE WHEN d.replay_id IS NULL THEN NULL
                                WHEN EXISTS (SELECT 1 FROM \(s).messages m WHERE m.id = d.replay_id) THEN 'pending'
                                WHEN EXISTS (SELECT 1 FROM \(s).dead_letters r WHERE r.id = d.replay_id) THEN 'dead again'
                                ELSE 'published' END
                    FROM \(s).dead_letters d
                    LEFT JOIN \(s).dlq_audit a ON a.id = d.audit_id
                    WHERE d.id = $1
                    """, binds: binds), logger: logger)
        for try await row in rows {
            let cells = row.makeRandomAccess()
            var index = Self.summaryColumnCount
            func next<T: PostgresDecodable>(_ type: T.Type) throws -> T {
                defer { index += 1 }
                return try cells[index].decode(T.self)
            }
            let lane = try next(Int16.self), headers = try next(String.self)
            let contentType = try next(String?.self), type = try next(String?.self), relay = try next(String?.self)
            let purgedAt = try next(Date?.self), payload = try next(ByteBuffer.self)
            let auditID = try next(Int64?.self), at = try next(Date?.self), actor = try next(String?.self)
            let action = try next(String?.self), count = try next(Int32?.self), dryRun = try next(Bool?.self)
            let filterJSON = try next(String?.self), replayOf = try next(Int64?.self), replayState = try next(String?.self)
            var lastAction: DeadLetterAuditEntry?
            if let auditID, let at, let actor, let action, let count, let dryRun, let filterJSON {
                lastAction = DeadLetterAuditEntry(
                    id: auditID, at: at, actor: actor, action: action, count: count, dryRun: dryRun, filterJSON: filterJSON)
            }
            return DeadLetter(
                summary: try Self.summary(row), lane: lane, headersJSON: headers, contentType: contentType, type: type,
                relay: relay, purgedAt: purgedAt, payload: Data(payload.readableBytesView), lastAction: lastAction,
                replayOf: replayOf, replayState: replayState)
        }
        throw DeadLetterStoreError.notFound(id: id, schema: s)
    }

    /// The audit trail, newest first.
    public func audit(limit: Int, logger: Logger) async throws -> [DeadLetterAuditEntry] {
        var binds = PostgresBindings()
        binds.append(limit)
        return try await auditEntries("ORDER BY id DESC LIMIT $1", binds, logger: logger)
    }

    /// One audit row, or nil when there is none with that id.
    public func auditEntry(id: Int64, logger: Logger) async throws -> DeadLetterAuditEntry? {
        var binds = PostgresBindings()
        binds.append(id)
        return try await auditEntries("WHERE id = $1", binds, logger: logger).first
    }

    /// Audit rows selected by `clause` (fixed text; values only in `binds`).
    private func auditEntries(_ clause: String, _ binds: PostgresBindings, logger: Logger) async throws -> [DeadLetterAuditEntry] {
        try await requireSchema(logger: logger)
        let rows = try await client.query(
            PostgresQuery(
                unsafeSQL: "SELECT id, at, actor, action, count, dry_run, filter::text FROM \(s).dlq_audit \(clause)", binds: binds),
            logger: logger)
        var entries: [DeadLetterAuditEntry] = []
        for try await (id, at, actor, action, count, dryRun, filter) in rows.decode((Int64, Date, String, String, Int32, Bool, String).self) {
            entries.append(DeadLetterAuditEntry(id: id, at: at, actor: actor, action: action, count: count, dryRun: dryRun, filterJSON: filter))
        }
        return entries
    }

    /// Refuses a change that names the dry run it confirms (`confirming`) unless that dry run was
    /// of the same action, by the same actor, with the same selection, and recent: what the
    /// operator saw is what gets changed. The console's confirm step goes through here.
    private func checkConfirmation(
        _ auditID: Int64, action: String, actor: String, filterJSON: String, logger: Logger
    ) async throws {
        guard let entry = try await auditEntry(id: auditID, logger: logger) else {
            throw DeadLetterStoreError.confirmationMismatch(auditID: auditID, problem: "there is no such audit row")
        }
        let problem: String? =
            if !entry.dryRun { "it is not a dry run" }
            else if entry.action != action { "it was a dry run of \(entry.action), not \(action)" }
            else if entry.actor != actor { "it was made by \(entry.actor), not \(actor)" }
            else if try !Self.sameJSON(entry.filterJSON, filterJSON) { "its selection differs from this one" }
            else if entry.at < Date().addingTimeInterval(-Self.confirmationWindow) { "it is older than \(Int(Self.confirmationWindow / 60)) minutes" }
            else { nil }
        if let problem { throw DeadLetterStoreError.confirmationMismatch(auditID: auditID, problem: problem) }
    }

    /// How long a dry run can be confirmed.
    public static let confirmationWindow: TimeInterval = 15 * 60

    private static func sameJSON(_ a: String, _ b: String) throws -> Bool {
        func object(_ text: String) throws -> NSDictionary? {
            try JSONSerialization.jsonObject(with: Data(text.utf8)) as? NSDictionary
        }
        guard let left = try object(a), let right = try object(b) else { return false }
        return left.isEqual(right)
    }

    // MARK: Replay

    /// Moves the selected dead letters back into the outbox (see the type's documentation for the
    /// concurrency argument and the ordering rule), then wakes the relays.
    ///
    /// Each replayed message keeps topic (unless `toTopic`), key, payload, headers, type and content
    /// type, gets the header `outbox-replay-of: <dead-letter id>` (so consumers and operators can
    /// trace it back; headers that are not a JSON object, the `undecodable` case, are left as they
    /// are), a new id and `created_at = now()` (it is a new outbox row; the dead letter
    /// keeps the original time). The dead letter becomes `replayed` with `replay_id` = the new id.
    public func replay(_ request: DeadLetterReplayRequest, logger: Logger) async throws -> DeadLetterReplayResult {
        try request.validate()
        try await requireSchema(logger: logger)
        var filter = request.filter
        filter.statuses = [.dead]
        var extra: [String: Any] = [:]
        if let toTopic = request.toTopic { extra["to_topic"] = toTopic }
        if let limit = request.limit { extra["limit"] = limit }
        let filterJSON = try Self.auditJSON(filter, extra: extra)

        if let confirming = request.confirming, !request.dryRun {
            try await checkConfirmation(confirming, action: "replay", actor: request.actor, filterJSON: filterJSON, logger: logger)
        }
        if request.dryRun {
            let count = try await matchCount(filter, limit: request.limit, logger: logger)
            let sample = try await summaries(filter, limit: min(request.limit ?? Self.dryRunSampleSize, Self.dryRunSampleSize), logger: logger)
            let auditID = try await insertAudit(action: "replay", actor: request.actor, filterJSON: filterJSON, count: count, dryRun: true, logger: logger)
            return DeadLetterReplayResult(auditID: auditID, dryRun: true, count: count, replayed: [], wouldReplay: sample)
        }

        let auditID = try await insertAudit(action: "replay", actor: request.actor, filterJSON: filterJSON, count: 0, dryRun: false, logger: logger)
        var replayed: [DeadLetterReplayResult.Pair] = []
        var after: Int64 = 0
        while true {
            let want = min(request.batchSize, request.limit.map { $0 - replayed.count } ?? request.batchSize)
            guard want > 0 else { break }
            let batch = try await replayBatch(
                filter, after: after, limit: want, toTopic: request.toTopic, auditID: auditID, logger: logger)
            replayed += batch
            if !batch.isEmpty {
                try await notifyRelays(logger: logger)
                logger.debug(
                    "replayed a batch of dead letters",
                    metadata: ["schema": "\(s)", "count": "\(batch.count)", "audit": "\(auditID)", "total": "\(replayed.count)"])
            }
            // Fewer than asked means no unlocked match is left past the cursor (SKIP LOCKED keeps
            // scanning past locked rows to fill the LIMIT).
            guard batch.count == want, let last = batch.last else { break }
            after = last.deadLetterID
        }
        if !replayed.isEmpty {
            logger.info("replayed dead letters", metadata: ["schema": "\(s)", "count": "\(replayed.count)", "audit": "\(auditID)"])
        }
        return DeadLetterReplayResult(auditID: auditID, dryRun: false, count: replayed.count, replayed: replayed, wouldReplay: [])
    }

    /// One batch of a replay, in one statement (so in one transaction with its audit count).
    ///
    /// Pairing old and new ids does not rely on the order in which `INSERT … SELECT` assigns
    /// identity values or returns rows (PostgreSQL promises neither): the new ids are drawn from the
    /// `messages` identity sequence first (`new_ids`, one `nextval` per picked row, materialized so
    /// it runs exactly once), both sides are ranked (`row_number()` over the old id and over the new
    /// id) and joined on the rank, so the k-th oldest dead letter gets the k-th smallest new id. The
    /// insert then writes those ids explicitly (`OVERRIDING SYSTEM VALUE`), and the same pairs mark
    /// the dead letters — the mapping is one table used by both writes.
    private func replayBatch(
        _ filter: DeadLetterFilter, after: Int64, limit: Int, toTopic: String?, auditID: Int64, logger: Logger
    ) async throws -> [DeadLetterReplayResult.Pair] {
        var binds = PostgresBindings()
        binds.append(limit)
        binds.append(after)
        if let toTopic { binds.append(toTopic) } else { binds.appendNull() }
        binds.append(auditID)
        let condition = filter.condition(binds: &binds)
        let sql = """
            WITH picked AS MATERIALIZED (
                SELECT d.id, d.topic, d.key, d.payload, d.headers, d.content_type, d.type
                FROM \(s).dead_letters d
                WHERE d.status = 'dead' AND d.id > $2 AND \(condition)
                ORDER BY d.id
                LIMIT $1
                FOR UPDATE SKIP LOCKED),
            -- The keys' enqueue locks (migration 3) before any id is taken: a transaction
            -- enqueueing one of these keys commits first, or waits for this one. And the
            -- transaction id before any outbox id (migration 5: the relays' frontier needs it).
            locked AS MATERIALIZED (SELECT \(s).lock_keys(array_agg(p.key)), pg_current_xact_id() FROM picked p),
            new_ids AS MATERIALIZED (
                SELECT nextval(pg_get_serial_sequence('\(s).messages', 'id')) AS new_id FROM locked, picked),
            pairs AS MATERIALIZED (
                SELECT o.id, o.topic, o.key, o.payload, o.headers, o.content_type, o.type, n.new_id
                FROM (SELECT p.*, row_number() OVER (ORDER BY p.id) AS rank FROM picked p) o
                JOIN (SELECT new_id, row_number() OVER (ORDER BY new_id) AS rank FROM new_ids) n USING (rank)),
            inserted AS (
                INSERT INTO \(s).messages (id, topic, key, payload, headers, content_type, type)
                OVERRIDING SYSTEM VALUE
                SELECT new_id, coalesce($3::text, topic), key, payload,
                       CASE WHEN jsonb_typeof(headers) = 'object'
                            THEN headers || jsonb_build_object('outbox-replay-of', id::text) ELSE headers END,
                       content_type, type
                FROM pairs
                ORDER BY new_id
                RETURNING id),
            marked AS (
                UPDATE \(s).dead_letters d
                SET status = 'replayed', replayed_at = now(), replay_id = p.new_id, audit_id = $4
                FROM pairs p
                WHERE d.id = p.id
                RETURNING d.id, d.replay_id),
            audited AS (
                UPDATE \(s).dlq_audit SET count = count + (SELECT count(*) FROM marked) WHERE id = $4)
            SELECT m.id, m.replay_id FROM marked m
            WHERE (SELECT count(*) FROM inserted) = (SELECT count(*) FROM marked)
            ORDER BY m.id
            """
        var pairs: [DeadLetterReplayResult.Pair] = []
        let rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
        for try await (id, newID) in rows.decode((Int64, Int64).self) {
            pairs.append(.init(deadLetterID: id, outboxID: newID))
        }
        return pairs
    }

    // MARK: Purge

    /// Marks the selected dead letters `purged` and drops their payloads (see
    /// `DeadLetterPurgeRequest` for why rows are kept as tombstones), in batches like `replay`,
    /// with the same locking, so a row is either replayed or purged, never both.
    public func purge(_ request: DeadLetterPurgeRequest, logger: Logger) async throws -> DeadLetterPurgeResult {
        try request.validate()
        try await requireSchema(logger: logger)
        var extra: [String: Any] = [:]
        if let limit = request.limit { extra["limit"] = limit }
        let filterJSON = try Self.auditJSON(request.filter, extra: extra)
        if let confirming = request.confirming, !request.dryRun {
            try await checkConfirmation(confirming, action: "purge", actor: request.actor, filterJSON: filterJSON, logger: logger)
        }
        if request.dryRun {
            let count = try await matchCount(request.filter, limit: request.limit, logger: logger)
            let sample = try await summaries(
                request.filter, limit: min(request.limit ?? Self.dryRunSampleSize, Self.dryRunSampleSize), logger: logger)
            let auditID = try await insertAudit(action: "purge", actor: request.actor, filterJSON: filterJSON, count: count, dryRun: true, logger: logger)
            return DeadLetterPurgeResult(auditID: auditID, dryRun: true, count: count, purged: [], wouldPurge: sample)
        }
        let auditID = try await insertAudit(action: "purge", actor: request.actor, filterJSON: filterJSON, count: 0, dryRun: false, logger: logger)
        var purged: [Int64] = []
        var after: Int64 = 0
        while true {
            let want = min(request.batchSize, request.limit.map { $0 - purged.count } ?? request.batchSize)
            guard want > 0 else { break }
            var binds = PostgresBindings()
            binds.append(want)
            binds.append(after)
            binds.append(auditID)
            let condition = request.filter.condition(binds: &binds)
            let sql = """
                WITH picked AS MATERIALIZED (
                    SELECT d.id FROM \(s).dead_letters d
                    WHERE d.status <> 'purged' AND d.id > $2 AND \(condition)
                    ORDER BY d.id
                    LIMIT $1
                    FOR UPDATE SKIP LOCKED),
                done AS (
                    UPDATE \(s).dead_letters d
                    SET status = 'purged', purged_at = now(), payload = ''::bytea, audit_id = $3
                    FROM picked p
                    WHERE d.id = p.id
                    RETURNING d.id),
                audited AS (
                    UPDATE \(s).dlq_audit SET count = count + (SELECT count(*) FROM done) WHERE id = $3)
                SELECT id FROM done ORDER BY id
                """
            var batch: [Int64] = []
            let rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            for try await id in rows.decode(Int64.self) { batch.append(id) }
            purged += batch
            guard batch.count == want, let last = batch.last else { break }
            after = last
        }
        if !purged.isEmpty {
            logger.info("purged dead letters", metadata: ["schema": "\(s)", "count": "\(purged.count)", "audit": "\(auditID)"])
        }
        return DeadLetterPurgeResult(auditID: auditID, dryRun: false, count: purged.count, purged: purged, wouldPurge: [])
    }

    // MARK: Helpers

    /// Refuses to run against a schema without the audit table, with the fix in the message.
    private func requireSchema(logger: Logger) async throws {
        let version = try await Migrator(schema: schema).currentVersion(client: client, logger: logger)
        guard version >= Self.requiredSchemaVersion else {
            throw DeadLetterStoreError.schemaTooOld(schema: s, version: version, needed: Self.requiredSchemaVersion)
        }
    }

    private func summaries(_ filter: DeadLetterFilter, limit: Int, after: Int64 = 0, logger: Logger) async throws -> [DeadLetterSummary] {
        var binds = PostgresBindings()
        binds.append(limit)
        binds.append(after)
        let condition = filter.condition(binds: &binds)
        let rows = try await client.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT \(Self.summaryColumns)
                    FROM \(s).dead_letters d
                    WHERE d.id > $2 AND \(condition)
                    ORDER BY d.id
                    LIMIT $1
                    """, binds: binds), logger: logger)
        var summaries: [DeadLetterSummary] = []
        for try await row in rows { summaries.append(try Self.summary(row)) }
        return summaries
    }

    /// How many rows match, counting at most `limit` (what a replay or purge with that limit takes).
    private func matchCount(_ filter: DeadLetterFilter, limit: Int?, logger: Logger) async throws -> Int {
        var binds = PostgresBindings()
        binds.append(Int64(limit ?? Int(Int64.max)))
        let condition = filter.condition(binds: &binds)
        let rows = try await client.query(
            PostgresQuery(
                unsafeSQL: "SELECT count(*) FROM (SELECT 1 FROM \(s).dead_letters d WHERE \(condition) LIMIT $1) x",
                binds: binds), logger: logger)
        for try await count in rows.decode(Int64.self) { return Int(count) }
        return 0
    }

    private func insertAudit(action: String, actor: String, filterJSON: String, count: Int, dryRun: Bool, logger: Logger) async throws -> Int64 {
        var binds = PostgresBindings()
        binds.append(actor)
        binds.append(action)
        binds.append(filterJSON)
        binds.append(Int32(clamping: count))
        binds.append(dryRun)
        let rows = try await client.query(
            PostgresQuery(
                unsafeSQL: """
                    INSERT INTO \(s).dlq_audit (actor, action, filter, count, dry_run)
                    VALUES ($1, $2, $3::jsonb, $4, $5) RETURNING id
                    """, binds: binds), logger: logger)
        for try await id in rows.decode(Int64.self) { return id }
        preconditionFailure("INSERT … RETURNING returned no row")
    }

    /// Wakes idle relays now rather than at their next poll (the channel `enqueue(...)` uses).
    private func notifyRelays(logger: Logger) async throws {
        var binds = PostgresBindings()
        binds.append(schema.notificationChannel)
        try await client.query(PostgresQuery(unsafeSQL: "SELECT pg_notify($1, '')::text", binds: binds), logger: logger)
    }

    static func auditJSON(_ filter: DeadLetterFilter, extra: [String: Any]) throws -> String {
        var object = filter.auditObject()
        for (name, value) in extra { object[name] = value }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    static let summaryColumns = """
        d.id, d.topic, d.key, d.reason, d.error, d.attempts, d.status, d.created_at, d.dead_at,
        d.replayed_at, d.replay_id, octet_length(d.payload)
        """
    static let summaryColumnCount = 12

    static func summary(_ row: PostgresRow) throws -> DeadLetterSummary {
        let (id, topic, key, reason, error, attempts, status, createdAt, deadAt, replayedAt, replayID, bytes) = try row.decode(
            (Int64, String, ByteBuffer?, String, String, Int32, String, Date, Date, Date?, Int64?, Int32).self)
        let keyFields = DeadLetterSummary.keyFields(key)
        return DeadLetterSummary(
            id: id, topic: topic, key: keyFields.text, keyHex: keyFields.hex, reason: reason, error: error,
            attempts: attempts, status: DeadLetterStatus(rawValue: status) ?? .dead, createdAt: createdAt, deadAt: deadAt,
            replayedAt: replayedAt, replayID: replayID, payloadBytes: Int(bytes))
    }
}
