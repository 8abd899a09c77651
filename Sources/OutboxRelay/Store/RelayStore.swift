import Foundation
import Logging
import NIOCore
import Outbox
import PostgresNIO

/// Every statement the relay loop runs, kept together (like river's named queries) so the whole
/// claim / read / ack protocol can be read in one place.
///
/// Writes to message rows (ack, retry, dead letter) are fenced: they join `lanes` on the relay's
/// own id *and* the epoch it got when it claimed the lane, and lock those lane rows `FOR SHARE`,
/// so a claim by another relay (which updates the lane row) waits for an in-progress write and any
/// later write of the old owner matches nothing. The fenced lanes are used as a
/// 256-bit mask, evaluated once (`get_bit((SELECT bit_or(B'1'::bit(256) >> lane) FROM fence),
/// m.lane) = 1`), rather than joined: a join lets the planner scan every row of each lane instead
/// of fetching the batch's ids by primary key (seen: 236 ms instead of 2.6 ms for 1,000 rows with
/// 100,000 pending). A mask rather than `lane = ANY(ARRAY(SELECT lane FROM fence))`: that array is
/// a run-time parameter, searched element by element for every row (up to 256 comparisons);
/// measured on 1,000 rows the mask took the fenced delete from 3.9 ms to 2.7 ms (a plain delete
/// of the same ids: 1.7 ms).
///
/// Every statement runs through one `BoundedDatabase`: none can keep its caller past the deadline,
/// whatever happens to its connection.
///
/// Each fenced write also answers which of the lanes it was given passed the fence
/// (``FencedWrite/lanesHeld``): a lane missing there was taken over behind the relay's back, and
/// the relay drops it at once instead of reading (and publishing) it again until its next renewal.
struct RelayStore: Sendable {
    let database: BoundedDatabase
    let schema: SchemaName
    let relayID: String
    private let sql: SQL

    init(database: BoundedDatabase, schema: SchemaName, relayID: String) {
        self.database = database
        self.schema = schema
        self.relayID = relayID
        self.sql = SQL(schema: schema.rawValue)
    }

    /// A store bounded by the default session limits' deadline (tests, probes).
    init(client: PostgresClient, schema: SchemaName, relayID: String) {
        self.init(
            database: BoundedDatabase(client: client, deadline: DatabaseSessionBounds().clientDeadline),
            schema: schema, relayID: relayID)
    }

    // MARK: Membership

    /// Records this relay's heartbeat — who it is, whether it is ready and why not, whether it
    /// stepped back (migration 7) — and returns how many relays are members of the fleet (itself
    /// included unless it stepped back): the count the fair share divides by.
    func heartbeat(
        _ identity: RelayIdentity, steppedBack: Bool = false, readiness: Readiness? = nil,
        liveWithin ttl: Duration, limit: Duration? = nil, logger: Logger
    ) async throws -> Int {
        var binds = PostgresBindings(capacity: 9)
        binds.append(relayID)
        binds.append(identity.host)
        binds.append(identity.pid)
        binds.append(identity.version)
        binds.append(ttl.milliseconds)
        binds.append(identity.startedAt)
        binds.append(steppedBack)
        binds.append(readiness?.isReady)
        binds.append(readiness.map { Readiness.oneLine($0.message) })
        return try await database.rows("heartbeat", PostgresQuery(unsafeSQL: sql.heartbeat, binds: binds), limit: limit, logger: logger) {
            rows in
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return steppedBack ? 0 : 1
        }
    }

    func deregister(limit: Duration? = nil, logger: Logger) async throws {
        var binds = PostgresBindings(capacity: 1)
        binds.append(relayID)
        try await execute("deregister", PostgresQuery(unsafeSQL: sql.deregister, binds: binds), limit: limit, logger: logger)
    }

    /// Sets or clears this relay's wake-up flag: while it is set, every `enqueue` notifies
    /// (migration 6, ``IdleSchedule``).
    func wantWakeup(_ wanted: Bool, logger: Logger) async throws {
        var binds = PostgresBindings(capacity: 2)
        binds.append(relayID)
        binds.append(wanted)
        try await execute(
            wanted ? "asking to be woken" : "clearing the wake-up flag", PostgresQuery(unsafeSQL: sql.wantWakeup, binds: binds),
            logger: logger)
    }

    // MARK: Leases

    /// Claims up to `count` free or expired lanes; the database clock decides expiry.
    func claim(count: Int, ttl: Duration, limit: Duration? = nil, logger: Logger) async throws -> [LaneLease] {
        guard count > 0 else { return [] }
        var binds = PostgresBindings(capacity: 3)
        binds.append(relayID)
        binds.append(count)
        binds.append(ttl.milliseconds)
        return try await database.rows("claiming lanes", PostgresQuery(unsafeSQL: sql.claim, binds: binds), limit: limit, logger: logger) {
            rows in
            var leases: [LaneLease] = []
            for try await (lane, epoch) in rows.decode((Int16, Int64).self) {
                leases.append(LaneLease(lane: lane, epoch: epoch))
            }
            return leases
        }
    }

    /// Extends the leases still held with the same epoch; returns the lanes renewed.
    func renew(_ leases: [LaneLease], ttl: Duration, limit: Duration? = nil, logger: Logger) async throws -> Set<Int16> {
        guard !leases.isEmpty else { return [] }
        var binds = fence(leases)
        binds.append(ttl.milliseconds)
        return try await database.rows("renewing leases", PostgresQuery(unsafeSQL: sql.renew, binds: binds), limit: limit, logger: logger) {
            rows in
            var renewed = Set<Int16>()
            for try await lane in rows.decode(Int16.self) { renewed.insert(lane) }
            return renewed
        }
    }

    /// Gives lanes back at once (graceful hand-over), so the next relay need not wait for a TTL.
    func release(_ leases: [LaneLease], limit: Duration? = nil, logger: Logger) async throws {
        guard !leases.isEmpty else { return }
        let binds = fence(leases)
        try await execute("releasing lanes", PostgresQuery(unsafeSQL: sql.release, binds: binds), limit: limit, logger: logger)
    }

    /// Gives back every lane this relay owns, whatever the epoch (shutdown, after the last batch
    /// was settled); returns how many.
    @discardableResult
    func releaseAllOwned(limit: Duration? = nil, logger: Logger) async throws -> Int {
        var binds = PostgresBindings(capacity: 1)
        binds.append(relayID)
        return try await count(
            "releasing every lane", PostgresQuery(unsafeSQL: sql.releaseAllOwned, binds: binds), limit: limit, logger: logger)
    }

    // MARK: Messages

    /// Reads the next batch of owned lanes in id order, starting after `start` (the lowest of the
    /// lanes' floors, see `LaneCursors`; 0 reads from the beginning), so it walks the index entries
    /// of what it returns instead of every dead one since the start of the table. Left out: every
    /// message whose key has an earlier message waiting for a retry (so a retry never lets a later
    /// message overtake it), the messages still in flight (`excluding`: the batch being delivered,
    /// when reading ahead of it, and stragglers) and every message of a `parked` key (one with a
    /// straggler in flight).
    ///
    /// A retry whose wait is over may lie below `start` (its key's later rows were passed while it
    /// waited): the read then starts just below the first such retry, so it and the rest of its key
    /// are read again in order. Only rescheduled rows (`attempts > 0`) are held by `available_at`;
    /// a fresh row is ready whatever the clocks say, so a clock stepping back can never make a read
    /// pass one.
    func readBatch(
        lanes: [Int16], limit: Int, maxBytes: Int = .max, after start: Int64 = 0, excluding inFlight: [Int64] = [],
        parked: [ByteBuffer] = [], logger: Logger
    ) async throws -> BatchRead {
        try await readBatch(
            limit: limit, maxBytes: maxBytes, shape: .idOrder(start: start), lanes: lanes, excluding: inFlight, parked: parked,
            logger: logger)
    }

    /// Reads the next batch walking the lanes as `shape` says (``ReadShape``): in id order after
    /// one start, or each lane after its own floor on the `(lane, id)` index, at most its quota,
    /// the first `limit` of those in id order. Everything else is as in
    /// ``readBatch(lanes:limit:maxBytes:after:excluding:parked:logger:)``; with the per-lane walk a
    /// due retry lowers only its own lane's start.
    ///
    /// `maxBytes` bounds the batch by its payload and key bytes as well as by `limit`: the rows
    /// come in id order up to the first that reaches it (so a row larger than it is a batch of its
    /// own and nothing is ever stuck), and ``BatchRead/reachedByteLimit`` says the read may have
    /// stopped short of rows it would otherwise have returned, like a read that returned `limit`.
    /// PostgreSQL sums the sizes without detoasting (`octet_length` of a bytea reads its length
    /// word), and nothing past the cut is sent.
    func readBatch(
        limit: Int, maxBytes: Int = .max, shape: ReadShape, lanes: [Int16], excluding inFlight: [Int64] = [],
        parked: [ByteBuffer] = [], logger: Logger
    ) async throws -> BatchRead {
        var binds = PostgresBindings(capacity: 7)
        let text: String
        switch shape {
        case .idOrder(let start):
            binds.append(lanes)
            binds.append(limit)
            binds.append(inFlight)
            binds.append(parked)
            binds.append(start)
            binds.append(maxBytes)
            text = sql.readBatch
        case .perLane(let reads):
            binds.append(reads.map(\.lane))
            binds.append(limit)
            binds.append(inFlight)
            binds.append(parked)
            binds.append(reads.map(\.after))
            binds.append(reads.map { Int32(clamping: $0.quota) })
            binds.append(maxBytes)
            text = sql.readBatchPerLane
        }
        return try await database.rows("reading a batch", PostgresQuery(unsafeSQL: text, binds: binds), logger: logger) {
            rows in
            var batch = try await BatchRead.decode(rows, limit: limit)
            // In id order: the answer has no ORDER BY of its own (re-sorting the joined rows cost
            // PostgreSQL about a third of the whole read), and comes in order in practice.
            if !zip(batch.rows, batch.rows.dropFirst()).allSatisfy({ $0.id < $1.id }) { batch.rows.sort { $0.id < $1.id } }
            // The same sum the statement cut at: reaching it means rows may have been left out.
            batch.reachedByteLimit = batch.rows.reduce(0) { $0 + $1.budgetBytes } >= maxBytes
            return batch
        }
    }

    /// Deletes delivered messages of lanes still held with the given epochs.
    @discardableResult
    func ack(ids: [Int64], leases: [LaneLease], logger: Logger) async throws -> FencedWrite {
        guard !ids.isEmpty else { return FencedWrite(rows: 0, lanesHeld: Set(leases.map(\.lane))) }
        var binds = fence(leases)
        binds.append(ids)
        return try await fencedWrite("acknowledging a batch", PostgresQuery(unsafeSQL: sql.ack, binds: binds), logger: logger)
    }

    /// Schedules failed messages again with their backoff.
    @discardableResult
    func retry(_ decisions: [RetryDecision], leases: [LaneLease], logger: Logger) async throws -> FencedWrite {
        guard !decisions.isEmpty else { return FencedWrite(rows: 0, lanesHeld: Set(leases.map(\.lane))) }
        var binds = fence(leases)
        binds.append(decisions.map(\.id))
        binds.append(decisions.map(\.delayMilliseconds))
        binds.append(decisions.map { Self.clip($0.error) })
        return try await fencedWrite("scheduling retries", PostgresQuery(unsafeSQL: sql.retry, binds: binds), logger: logger)
    }

    /// Moves poison messages to the dead-letter table in one statement.
    @discardableResult
    func deadLetter(_ decisions: [DeadLetterDecision], leases: [LaneLease], logger: Logger) async throws -> FencedWrite {
        guard !decisions.isEmpty else { return FencedWrite(rows: 0, lanesHeld: Set(leases.map(\.lane))) }
        var binds = fence(leases)
        binds.append(decisions.map(\.id))
        binds.append(decisions.map(\.reason.rawValue))
        binds.append(decisions.map { Self.clip($0.error) })
        binds.append(decisions.map(\.attempts))
        return try await fencedWrite("dead-lettering", PostgresQuery(unsafeSQL: sql.deadLetter, binds: binds), logger: logger)
    }

    /// Whether the outbox holds no message at all (used by `run --stop-when-drained`).
    /// The outbox's envelope source (migration 4): `wanted` is recorded if none is yet; the
    /// recorded one is returned either way.
    func recordedSource(wanted: String, logger: Logger) async throws -> String {
        var binds = PostgresBindings(capacity: 2)
        binds.append(wanted)
        binds.append(relayID)
        let recorded = try await database.rows(
            "reading the outbox's envelope source", PostgresQuery(unsafeSQL: sql.recordSource, binds: binds), logger: logger
        ) { rows in
            for try await source in rows.decode(String?.self) { return source }
            return nil
        }
        if let recorded { return recorded }
        // Another relay recorded it at the same moment: this insert waited for that one's commit
        // and then did nothing, and this statement's snapshot, taken before, cannot see the row.
        // A new statement does.
        return try await database.rows(
            "reading the outbox's envelope source", PostgresQuery(unsafeSQL: sql.readSource), logger: logger
        ) { rows in
            for try await source in rows.decode(String.self) { return source }
            throw RelayStoreError.noRecordedSource
        }
    }

    func isEmpty(logger: Logger) async throws -> Bool {
        try await database.rows("checking for an empty outbox", PostgresQuery(unsafeSQL: sql.isEmpty), logger: logger) { rows in
            for try await empty in rows.decode(Bool.self) { return empty }
            return true
        }
    }

    // MARK: Helpers

    /// Binds $1 = relay id, $2 = lanes, $3 = epochs: the fence every write joins on.
    private func fence(_ leases: [LaneLease]) -> PostgresBindings {
        var binds = PostgresBindings(capacity: 8)
        binds.append(relayID)
        binds.append(leases.map(\.lane))
        binds.append(leases.map(\.epoch))
        return binds
    }

    private func count(_ what: String, _ query: PostgresQuery, limit: Duration? = nil, logger: Logger) async throws -> Int {
        try await database.rows(what, query, limit: limit, logger: logger) { rows in
            for try await n in rows.decode(Int64.self) { return Int(n) }
            return 0
        }
    }

    private func fencedWrite(_ what: String, _ query: PostgresQuery, logger: Logger) async throws -> FencedWrite {
        try await database.rows(what, query, logger: logger) { rows in
            for try await (count, lanes, transaction) in rows.decode((Int64, [Int16], Int64).self) {
                return FencedWrite(rows: Int(count), lanesHeld: Set(lanes), transactionID: transaction)
            }
            return FencedWrite(rows: 0, lanesHeld: [])
        }
    }

    private func execute(_ what: String, _ query: PostgresQuery, limit: Duration? = nil, logger: Logger) async throws {
        try await database.rows(what, query, limit: limit, logger: logger) { rows in
            for try await _ in rows {}
        }
    }

    /// Error texts come from brokers and libraries; keep the row small whatever they say.
    private static func clip(_ text: String) -> String {
        text.count <= 2000 ? text : String(text.prefix(2000)) + "…"
    }
}

/// A state of the outbox tables no relay can work with.
enum RelayStoreError: Error, CustomStringConvertible {
    /// `identity` has no row although an insert of one just found a conflicting one.
    case noRecordedSource
    /// A batch read answered with fewer columns than its statement selects.
    case unexpectedBatchAnswer(columns: Int)

    var description: String {
        switch self {
        case .unexpectedBatchAnswer(let columns):
            "a batch read answered with \(columns) columns instead of 13: the relay's statement and its decoder disagree, a bug in this build of outbox-relay; report it with `outbox-relay --version`"
        case .noRecordedSource:
            "the outbox's envelope source is not recorded although another relay was recording it: was the identity row deleted? Insert one (INSERT INTO <schema>.identity (source, recorded_by) VALUES ('outbox', 'operator')) or start the relay again"
        }
    }
}

/// What a fenced write did: rows written, and the lanes that passed the fence (held by this relay
/// with the epochs given).
struct FencedWrite: Sendable, Equatable {
    var rows: Int
    var lanesHeld: Set<Int16>
    /// The statement's transaction id (nil: nothing was sent): a bound for the ``Frontier``.
    var transactionID: Int64?
}

extension RelayStore {
    /// The statement texts, rendered once for the configured schema.
    struct SQL: Sendable {
        let heartbeat, deregister, wantWakeup, claim, renew, release, releaseAllOwned, readBatch, readBatchPerLane, ack, retry, deadLetter, isEmpty: String
        let recordSource, readSource: String

        init(schema s: String) {
            // Everything but the clock is rewritten: a relay restarted under the same id (a
            // container restarted in its pod) is a new incarnation with a new start time.
            heartbeat = """
                WITH me AS (
                    INSERT INTO \(s).relays (id, host, pid, version, started_at, stepped_back, ready, readiness)
                    VALUES ($1, $2, $3, $4, $6, $7, $8, $9)
                    ON CONFLICT (id) DO UPDATE SET
                        heartbeat_at = now(), host = EXCLUDED.host, pid = EXCLUDED.pid, version = EXCLUDED.version,
                        started_at = EXCLUDED.started_at, stepped_back = EXCLUDED.stepped_back,
                        ready = EXCLUDED.ready, readiness = EXCLUDED.readiness
                    RETURNING id)
                SELECT CASE WHEN $7 THEN 0 ELSE 1 END + count(*) FROM \(s).relays
                WHERE id <> $1 AND NOT stepped_back AND heartbeat_at > now() - $5 * interval '1 millisecond'
                """
            deregister = "DELETE FROM \(s).relays WHERE id = $1"
            wantWakeup = "UPDATE \(s).relays SET wants_wakeup = $2 WHERE id = $1 AND wants_wakeup <> $2"
            claim = """
                UPDATE \(s).lanes l
                SET owner = $1, epoch = l.epoch + 1, lease_expires_at = now() + $3 * interval '1 millisecond'
                WHERE l.lane IN (
                    SELECT lane FROM \(s).lanes
                    WHERE owner IS NULL OR lease_expires_at < now()
                    ORDER BY lane LIMIT $2
                    FOR UPDATE SKIP LOCKED)
                RETURNING l.lane, l.epoch
                """
            // Every statement that waits for lane locks takes them in lane order (ORDER BY is
            // applied before the locking clause), so renewals, releases and the fence of a write
            // can never wait on each other in a cycle: no deadlock, whatever their plans. Claims
            // never wait (SKIP LOCKED). LaneLockOrderTests loops them against each other.
            let ownedInOrder = """
                SELECT l.lane FROM \(s).lanes l
                JOIN unnest($2::int2[], $3::int8[]) AS o(lane, epoch) ON l.lane = o.lane AND l.epoch = o.epoch
                WHERE l.owner = $1
                ORDER BY l.lane
                """
            renew = """
                WITH locked AS (\(ownedInOrder) FOR UPDATE OF l)
                UPDATE \(s).lanes l SET lease_expires_at = now() + $4 * interval '1 millisecond'
                FROM locked WHERE l.lane = locked.lane
                RETURNING l.lane
                """
            release = """
                WITH locked AS (\(ownedInOrder) FOR UPDATE OF l)
                UPDATE \(s).lanes l SET owner = NULL, lease_expires_at = NULL
                FROM locked WHERE l.lane = locked.lane
                """
            releaseAllOwned = """
                WITH locked AS (SELECT lane FROM \(s).lanes WHERE owner = $1 ORDER BY lane FOR UPDATE),
                r AS (
                    UPDATE \(s).lanes l SET owner = NULL, lease_expires_at = NULL
                    FROM locked WHERE l.lane = locked.lane RETURNING 1)
                SELECT count(*) FROM r
                """
            // `snapshot`: the oldest transaction running at this statement's snapshot (`Frontier`).
            // `retrying`: the lanes' rescheduled rows, from the partial index on them (normally
            // empty): those still waiting hold their keys; the first one due of each lane that this
            // read can return (not in flight, parked or held) lowers the start, and is reported.
            // The CTEs before the batch and the answer after it are the same for both walks.
            let readHead = """
                WITH snapshot AS MATERIALIZED (
                    SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8 AS oldest_running),
                retrying AS MATERIALIZED (
                    SELECT lane, key, id, available_at > now() AS waiting FROM \(s).messages
                    WHERE lane = ANY($1) AND attempts > 0),
                held AS (
                    SELECT key, min(id) AS first_id FROM retrying WHERE waiting AND key IS NOT NULL GROUP BY key),
                due AS MATERIALIZED (
                    SELECT r.lane, min(r.id) AS first_id FROM retrying r
                    WHERE NOT r.waiting AND r.id <> ALL($3) AND (r.key IS NULL OR r.key <> ALL($4::bytea[]))
                      AND NOT EXISTS (SELECT 1 FROM held h WHERE h.key = r.key AND h.first_id < r.id)
                    GROUP BY r.lane),
                """
            // What the byte limit counts of a row (`PendingMessage.budgetBytes` on the relay's side).
            let rowBytes = "octet_length(m.payload) + coalesce(octet_length(m.key), 0)"
            // The batch's rows up to the first that reaches the byte limit (`RelayStore.readBatch`):
            // a running sum over rows already in id order (no sort), cut above it.
            func withinBytes(_ rows: String, limit: String) -> String {
                """
                SELECT w.* FROM (
                        SELECT r.*, sum(r.size) OVER (ORDER BY r.id ROWS UNBOUNDED PRECEDING) - r.size AS bytes_before
                        FROM (\(rows)) r) w
                    WHERE w.bytes_before < \(limit)
                """
            }
            let readTail = """
                SELECT snapshot.oldest_running, ARRAY(SELECT lane FROM due ORDER BY lane),
                       ARRAY(SELECT first_id FROM due ORDER BY lane), b.id, b.topic, b.key, b.lane, b.payload, b.headers, b.content_type, b.type,
                       b.created_at, b.attempts
                FROM snapshot LEFT JOIN batch b ON true
                """
            readBatch = """
                \(readHead)
                batch AS (\(withinBytes("""
                    SELECT m.id, m.topic, m.key, m.lane, m.payload, m.headers, m.content_type, m.type,
                           m.created_at, m.attempts, \(rowBytes) AS size
                    FROM \(s).messages m
                    WHERE m.id > least($5::int8, (SELECT min(first_id) - 1 FROM due))
                      AND m.lane = ANY($1) AND (m.attempts = 0 OR m.available_at <= now()) AND m.id <> ALL($3)
                      AND (m.key IS NULL OR m.key <> ALL($4::bytea[]))
                      AND NOT EXISTS (SELECT 1 FROM held h WHERE h.key = m.key AND h.first_id < m.id)
                    ORDER BY m.id
                    LIMIT $2
                    """, limit: "$6::int8")))
                \(readTail)
                """
            // `$5` and `$6`: each lane's floor and quota, beside its lane in `$1`; `$7` the byte limit.
            readBatchPerLane = """
                \(readHead)
                batch AS (\(withinBytes("""
                    SELECT b.* FROM unnest($1::int2[], $5::int8[], $6::int4[]) AS c(lane, floor, quota)
                    CROSS JOIN LATERAL (
                        SELECT m.id, m.topic, m.key, m.lane, m.payload, m.headers, m.content_type, m.type,
                               m.created_at, m.attempts, \(rowBytes) AS size
                        FROM \(s).messages m
                        WHERE m.lane = c.lane AND m.id > least(c.floor, (SELECT d.first_id - 1 FROM due d WHERE d.lane = c.lane))
                          AND (m.attempts = 0 OR m.available_at <= now()) AND m.id <> ALL($3)
                          AND (m.key IS NULL OR m.key <> ALL($4::bytea[]))
                          AND NOT EXISTS (SELECT 1 FROM held h WHERE h.key = m.key AND h.first_id < m.id)
                        ORDER BY m.id
                        LIMIT c.quota) b
                    ORDER BY b.id
                    LIMIT $2
                    """, limit: "$7::int8")))
                \(readTail)
                """
            let fence = """
                fence AS (\(ownedInOrder) FOR SHARE OF l)
                """
            ack = """
                WITH \(fence),
                done AS (
                    DELETE FROM \(s).messages m
                    WHERE m.id = ANY($4) AND get_bit((SELECT bit_or(B'1'::bit(256) >> lane) FROM fence), m.lane) = 1
                    RETURNING 1)
                SELECT (SELECT count(*) FROM done), ARRAY(SELECT lane FROM fence), pg_current_xact_id()::text::int8
                """
            retry = """
                WITH \(fence),
                done AS (
                    UPDATE \(s).messages m
                    SET attempts = m.attempts + 1,
                        available_at = now() + x.delay_ms * interval '1 millisecond',
                        last_error = x.error
                    FROM unnest($4::int8[], $5::int8[], $6::text[]) AS x(id, delay_ms, error)
                    WHERE m.id = x.id AND get_bit((SELECT bit_or(B'1'::bit(256) >> lane) FROM fence), m.lane) = 1
                    RETURNING 1)
                SELECT (SELECT count(*) FROM done), ARRAY(SELECT lane FROM fence), pg_current_xact_id()::text::int8
                """
            deadLetter = """
                WITH \(fence),
                moved AS (
                    DELETE FROM \(s).messages m
                    USING unnest($4::int8[], $5::text[], $6::text[], $7::int4[]) AS x(id, reason, error, attempts)
                    WHERE m.id = x.id AND get_bit((SELECT bit_or(B'1'::bit(256) >> lane) FROM fence), m.lane) = 1
                    RETURNING m.id, m.topic, m.key, m.lane, m.payload, m.headers, m.content_type, m.type,
                              m.created_at, x.attempts, x.reason, x.error),
                inserted AS (
                    INSERT INTO \(s).dead_letters (id, topic, key, lane, payload, headers, content_type, type,
                                                  created_at, attempts, reason, error, relay)
                    SELECT id, topic, key, lane, payload, headers, content_type, type,
                           created_at, attempts, reason, error, $1
                    FROM moved
                    RETURNING 1)
                SELECT (SELECT count(*) FROM inserted), ARRAY(SELECT lane FROM fence), pg_current_xact_id()::text::int8
                """
            isEmpty = "SELECT NOT EXISTS (SELECT 1 FROM \(s).messages)"
            // The first relay records its source; every one reads back what is recorded (the
            // insert's row is not visible to the same statement's select, hence the coalesce).
            recordSource = """
                WITH recorded AS (
                    INSERT INTO \(s).identity (source, recorded_by) VALUES ($1, $2)
                    ON CONFLICT (singleton) DO NOTHING
                    RETURNING source)
                SELECT coalesce((SELECT source FROM recorded), (SELECT source FROM \(s).identity))
                """
            readSource = "SELECT source FROM \(s).identity"
        }
    }
}
