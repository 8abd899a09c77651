import Foundation
import Logging
import PostgresNIO

/// One relay as `status` and the console show it: its row in `relays` (what it last said of
/// itself in a heartbeat) and the lanes it holds, read inside the caller's snapshot.
public struct RelayRecord: Sendable, Codable, Equatable {
    public var id: String
    public var host: String
    public var pid: Int32
    public var version: String
    public var startedAt: Date
    public var heartbeatAt: Date
    public var heartbeatAgeSeconds: Double
    /// Lanes whose lease this relay holds and has not let expire.
    public var lanesHeld: Int
    /// Its heartbeat is younger than the lease TTL.
    public var alive: Bool
    /// It handed its lanes to the others (its broker stayed unreachable) and waits to rejoin.
    public var steppedBack: Bool
    /// What its own `/readyz` said at its last heartbeat (nil: it never said).
    public var ready: Bool?
    public var readiness: String?

    /// Ready or why not, in words: what the relay said of itself, unless its silence says more.
    public var state: String

    public init(
        id: String, host: String, pid: Int32, version: String, startedAt: Date, heartbeatAt: Date,
        heartbeatAgeSeconds: Double, lanesHeld: Int, alive: Bool, steppedBack: Bool, ready: Bool?, readiness: String?
    ) {
        self.id = id
        self.host = host
        self.pid = pid
        self.version = version
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
        self.heartbeatAgeSeconds = heartbeatAgeSeconds
        self.lanesHeld = lanesHeld
        self.alive = alive
        self.steppedBack = steppedBack
        self.ready = ready
        self.readiness = readiness
        let said = readiness.map { ": \($0)" } ?? ""
        state =
            !alive ? "gone: no heartbeat for \(Int(heartbeatAgeSeconds)) s (its leases expire and other relays take its lanes)"
            : steppedBack ? "stepped back, its lanes are with the others\(said)"
            : ready == true ? "ready\(said)"
            : ready == false ? "not ready\(said)"
            : lanesHeld == 0 ? "alive, holding no lanes" : "publishing \(lanesHeld) lanes"
    }

    /// Whether an operator should look at it: gone, stepped back or not ready.
    public var needsAttention: Bool { !alive || steppedBack || ready == false }

    /// Every relay of `schema`, by id; `leaseTTL` decides which heartbeats count as alive.
    public static func readAll(
        on connection: PostgresConnection, schema: String, leaseTTL: Duration, logger: Logger
    ) async throws -> [RelayRecord] {
        var binds = PostgresBindings(capacity: 1)
        binds.append(leaseTTL.milliseconds)
        let rows = try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT r.id, r.host, r.pid, r.version, r.started_at, r.heartbeat_at,
                           extract(epoch FROM now() - r.heartbeat_at)::float8,
                           (SELECT count(*) FROM \(schema).lanes l WHERE l.owner = r.id AND l.lease_expires_at > now()),
                           r.heartbeat_at > now() - $1 * interval '1 millisecond',
                           r.stepped_back, r.ready, r.readiness
                    FROM \(schema).relays r ORDER BY r.id
                    """, binds: binds), logger: logger)
        var relays: [RelayRecord] = []
        for try await (id, host, pid, version, startedAt, heartbeatAt, age, held, alive, steppedBack, ready, readiness)
            in rows.decode((String, String, Int32, String, Date, Date, Double, Int64, Bool, Bool, Bool?, String?).self)
        {
            relays.append(
                RelayRecord(
                    id: id, host: host, pid: pid, version: version, startedAt: startedAt, heartbeatAt: heartbeatAt,
                    heartbeatAgeSeconds: age, lanesHeld: Int(held), alive: alive, steppedBack: steppedBack,
                    ready: ready, readiness: readiness))
        }
        return relays
    }
}
