import Foundation
import Logging
import Outbox
import OutboxEnvelope
import PostgresNIO
import OutboxTestSupport
import Testing

@_spi(Benchmark) @testable import OutboxRelay

/// Fault injection against a fleet of real `outbox-relay` processes, real PostgreSQL and a real
/// broker, checked by a ledger that reads every record back (see `Ledger`): nothing lost, per key
/// first deliveries in outbox-id order, duplicates bounded by one batch per fault.
///
/// Every relay runs with a short lease (`--lease-ttl 4s --renew-interval 1s`) so takeovers happen
/// within the test, and with its own envelope `source`, so the ledger can tell which relay
/// produced a record. Timings (takeover, hand-over, join) are measured and written to
/// /tmp/fleet-measurements.txt, never asserted: the machine is shared.
///
/// Serialized, and not to be run in parallel with other integration suites: scenarios restart
/// PostgreSQL and the broker.
@Suite(.serialized) struct FleetTests {
    static let leaseTTL = Duration.seconds(4)
    static let renewInterval = Duration.seconds(1)
    static let batchSize = 500

    // MARK: SIGKILL

    @Test func sigkillMidBatchLosesNothingKeepsKeyOrderAndIsTakenOverAfterTheTTL() async throws {
        try await Fleet.with { fleet in
            let (a, _, _) = try await fleet.startBalanced("a", "b", "c", ownRole: true)
            let enqueueStarted = ContinuousClock.now
            let expected = try await fleet.enqueue(50_000, keys: 1_000)
            let enqueueTime = ContinuousClock.now - enqueueStarted
            try await fleet.waitUntil("the drain is under way", timeout: .seconds(120)) {
                try await fleet.pending() <= 40_000
            }
            // Mid-batch, for certain: hold a's lane rows so that its next fenced ack (which locks
            // them FOR SHARE) waits, i.e. a has produced a batch, had it delivered, and not acked
            // it; then kill the process and its database sessions (the ack never happens) and let
            // go. Its renewals wait on the same lock, so its leases run out from here.
            let (victimLanes, leaseLeft, killedAt) = try await fleet.fixture.client.withTransaction(
                logger: fleet.fixture.logger
            ) { connection -> (Int, Double, ContinuousClock.Instant) in
                var victimLanes = 0
                var binds = PostgresBindings()
                binds.append(a)
                let locked = try await connection.query(
                    PostgresQuery(
                        unsafeSQL: "SELECT lane FROM \(fleet.fixture.schema.rawValue).lanes WHERE owner = $1 FOR UPDATE",
                        binds: binds), logger: fleet.fixture.logger)
                for try await _ in locked.decode(Int16.self) { victimLanes += 1 }
                try await fleet.waitUntil("a waits to ack a delivered batch", timeout: .seconds(30), poll: .milliseconds(20)) {
                    try await fleet.fixture.scalar(
                        """
                        SELECT count(*) FROM pg_stat_activity
                        WHERE usename = '\(a)' AND wait_event_type = 'Lock' AND query LIKE '%DELETE FROM%'
                        """, as: Int64.self) > 0
                }
                let leaseLeft = try await fleet.fixture.scalar(
                    "SELECT extract(epoch FROM max(lease_expires_at) - now())::float8 FROM {schema}.lanes WHERE owner = '\(a)'",
                    as: Double.self)
                let killedAt = ContinuousClock.now
                _ = await fleet.stop(a, SIGKILL)
                _ = try await fleet.fixture.scalar(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '\(a)'", as: Int64.self)
                return (victimLanes, leaseLeft, killedAt)
            }
            #expect(victimLanes >= 84)
            try await fleet.waitUntil("a's lanes taken over", timeout: .seconds(60), poll: .milliseconds(50)) {
                try await fleet.lanesOwned(by: a) == 0
            }
            let takeover = ContinuousClock.now - killedAt
            try await fleet.waitUntil("every lane held again", timeout: .seconds(30), poll: .milliseconds(50)) {
                try await fleet.fixture.scalar(
                    "SELECT count(*) FROM {schema}.lanes WHERE owner IS NOT NULL AND lease_expires_at > now()", as: Int64.self) == 256
            }
            let allHeld = ContinuousClock.now - killedAt
            try await fleet.drainAndStop(expectingExitZero: ["b", "c"])

            let ledger = try await fleet.ledger(expected)
            fleet.measure(
                "sigkill", "50000 msgs/1000 keys (enqueued in \(enqueueTime.secondsText)s while 3 relays drained),"
                    + " a killed holding \(victimLanes) lanes after its batch was delivered, before its ack: \(ledger);"
                    + " takeover of a's lanes \(takeover.secondsText)s after SIGKILL (its leases had"
                    + " \(String(format: "%.2f", leaseLeft))s left by the database clock), all 256 held again \(allHeld.secondsText)s"
                    + " (lease TTL \(Self.leaseTTL), renew \(Self.renewInterval))")
            #expect(ledger.lost.isEmpty, "\(ledger)")
            #expect(ledger.orderViolations.isEmpty, "\(ledger)")
            #expect(ledger.duplicates >= 1, "a died with a delivered, unacked batch, which is published again")
            #expect(ledger.duplicates <= Self.batchSize, "at most the killed relay's batch in flight: \(ledger)")
            #expect(ledger.duplicatedIDs == ledger.duplicatedIDs(involving: a), "only a's unacked batch is re-sent")
            #expect(ledger.unexpected.isEmpty && ledger.keyMismatches == 0)
            #expect(ledger.deadLettered.isEmpty)
        }
    }

    // MARK: SIGSTOP

    @Test func pausedRelayIsFencedOutAndItsLateWritesAreRejected() async throws {
        try await Fleet.with { fleet in
            // Every delete of a message row records who ran it (each relay connects as its own
            // database role, named like its relay id) and who owned the lane at that moment: a
            // fenced write can only ever delete rows of lanes its relay owns.
            try await fleet.installDeleteAudit()
            let (_, b, _) = try await fleet.startBalanced("a", "b", "c", ownRole: true)
            var expected = try await fleet.enqueue(40_000, keys: 300)
            try await fleet.waitUntil("the drain is under way", timeout: .seconds(120)) {
                try await fleet.pending() <= 38_000
            }
            let stoppedLanes = try await fleet.lanesOwned(by: b)
            let stoppedAt = ContinuousClock.now
            fleet.signal(b, SIGSTOP)
            try await fleet.waitUntil("b's lanes taken over", timeout: .seconds(60), poll: .milliseconds(50)) {
                try await fleet.lanesOwned(by: b) == 0
            }
            let takeover = ContinuousClock.now - stoppedAt
            // Paused past the TTL (a takeover implies it), resumed while the others work its lanes.
            try await Task.sleep(until: max(ContinuousClock.now + .milliseconds(200), stoppedAt + Self.leaseTTL + .milliseconds(500)), clock: .continuous)
            // More work for every key just before b wakes up, so the others are busy with its
            // lanes then: enqueued earlier, the two relays left drained all 70,000 rows before
            // SIGCONT in one run once the relay got faster.
            expected.merge(try await fleet.enqueue(30_000, keys: 300, first: 40_000)) { $1 }
            let pendingAtResume = try await fleet.pending()
            fleet.signal(b, SIGCONT)
            let pausedFor = ContinuousClock.now - stoppedAt
            try await fleet.drainAndStop(expectingExitZero: ["a", "b", "c"])

            let ledger = try await fleet.ledger(expected)
            let violations = try await fleet.fixture.scalar(
                "SELECT count(*) FROM {schema}.delete_audit WHERE owner IS DISTINCT FROM deleted_by", as: Int64.self)
            let deletesByB = try await fleet.fixture.scalar(
                "SELECT count(*) FROM {schema}.delete_audit WHERE deleted_by = '\(b)'", as: Int64.self)
            let audited = try await fleet.fixture.scalar("SELECT count(*) FROM {schema}.delete_audit", as: Int64.self)
            let bLog = fleet.relays[b]?.standardError ?? ""
            let fencedLog = bLog.contains("lease ran out during a batch") || bLog.contains("lost lane leases")
                || bLog.contains("self-fenced")
            fleet.measure(
                "sigstop", "40000 + 30000 msgs/300 keys, 3 relays, b paused \(pausedFor.secondsText)s holding \(stoppedLanes) lanes,"
                    + " taken over after \(takeover.secondsText)s, \(pendingAtResume) pending at SIGCONT: \(ledger);"
                    + " deletes audited \(audited), by b \(deletesByB), by a non-owner \(violations);"
                    + " b logged its fencing: \(fencedLog)")
            #expect(pendingAtResume > 0, "b resumed while there was still work (the scenario needs it)")
            #expect(audited == Int64(expected.count), "every row deleted once, by an ack")
            #expect(violations == 0, "no relay deleted a row of a lane it did not own at that moment")
            #expect(ledger.lost.isEmpty, "\(ledger)")
            #expect(ledger.orderViolations.isEmpty, "\(ledger)")
            #expect(ledger.duplicates <= Self.batchSize, "at most b's batch in flight: \(ledger)")
            #expect(ledger.duplicatedIDs == ledger.duplicatedIDs(involving: b), "only b's batch is re-sent")
            #expect(ledger.unexpected.isEmpty && ledger.keyMismatches == 0)
            #expect(fencedLog, "b noticed it lost its leases: \(bLog.suffix(3000))")
        }
    }

    // MARK: Join and SIGTERM

    @Test func joiningRelayGetsItsShareAndSigtermHandsOverAtOnceWithoutDuplicates() async throws {
        try await Fleet.with { fleet in
            let (a, b, c) = try await fleet.startBalanced("a", "b", "c")
            let expected = try await fleet.enqueue(60_000, keys: 500)
            // `status --json` agrees with the lanes table and counts all three as alive.
            let status = try await fleet.status()
            let owners = try await fleet.owners()
            #expect(Set(status.relays.filter(\.alive).map(\.id)) == [a, b, c])
            #expect(status.relays.map(\.lanes).reduce(0, +) == status.lanesHeld)
            #expect(status.lanesHeld == 256 && status.lanesTotal == 256)
            #expect(status.pending > 0 && status.pending <= Int64(expected.count))
            #expect(status.oldestPendingAgeSeconds ?? 0 > 0)
            #expect(status.deadLetters == 0)
            // Each says in its heartbeat what its /readyz says: ready, holding its lanes.
            try await fleet.waitUntil("every relay reports itself ready", timeout: .seconds(10)) {
                try await fleet.status().relays.allSatisfy { $0.ready == true && $0.readiness?.hasPrefix("ok: holds") == true }
            }
            for relay in status.relays {
                // Rebalancing may move a lane or two between the two reads; not more.
                #expect(abs(relay.lanes - (owners[relay.id] ?? 0)) <= 2, "\(relay.id): status \(relay.lanes), table \(owners)")
            }

            let pendingAtJoin = try await fleet.pending()
            let d = try await fleet.start("d")
            let joinedAt = ContinuousClock.now
            try await fleet.waitUntil("d holds a lane", timeout: .seconds(30), poll: .milliseconds(50)) {
                try await fleet.lanesOwned(by: d) > 0
            }
            let firstLane = ContinuousClock.now - joinedAt
            try await fleet.waitUntil("d holds its fair share", timeout: .seconds(30), poll: .milliseconds(50)) {
                try await fleet.lanesOwned(by: d) >= FairShare.target(lanes: 256, liveRelays: 4)
            }
            let fullShare = ContinuousClock.now - joinedAt
            let statusWithD = try await fleet.status()
            #expect(statusWithD.relays.first { $0.id == d }?.lanes ?? 0 >= 60)
            #expect(pendingAtJoin > 0, "d joined mid-drain")

            // A second wave, so c is stopped mid-drain however fast the first one went (a fast machine drained
            // all 60 000 before the SIGTERM once, and the test then proved nothing about the handover).
            let secondWave = try await fleet.enqueue(60_000, keys: 500, first: 60_000)
            let everything = expected.merging(secondWave) { first, _ in first }
            let pendingAtTerm = try await fleet.pending()
            let cLanes = try await fleet.lanesOwned(by: c)
            let terminatedAt = ContinuousClock.now
            let code = await fleet.stop(c, SIGTERM)
            let exited = ContinuousClock.now - terminatedAt
            let stillOwned = try await fleet.lanesOwned(by: c)
            #expect(code == 0, "\(fleet.relays[c]?.standardError.suffix(2000) ?? "")")
            #expect(stillOwned == 0, "c's lanes released at exit, not left to expire")
            #expect(try await fleet.fixture.scalar("SELECT count(*) FROM {schema}.relays WHERE id = '\(c)'", as: Int64.self) == 0)
            try await fleet.waitUntil("c's lanes taken by the others", timeout: .seconds(30), poll: .milliseconds(50)) {
                try await fleet.fixture.scalar(
                    "SELECT count(*) FROM {schema}.lanes WHERE owner IS NOT NULL AND lease_expires_at > now()", as: Int64.self) == 256
            }
            let handedOver = ContinuousClock.now - terminatedAt
            #expect(pendingAtTerm > 0, "c stopped mid-drain")
            try await fleet.drainAndStop(expectingExitZero: ["a", "b", "d"])

            let ledger = try await fleet.ledger(everything)
            fleet.measure(
                "join+sigterm", "60000+60000 msgs/500 keys, 3 relays, d joined with \(pendingAtJoin) pending, c SIGTERMed"
                    + " with \(pendingAtTerm) pending: \(ledger); d's first lane after \(firstLane.secondsText)s,"
                    + " its share (64) after \(fullShare.secondsText)s; c (\(cLanes) lanes) exited \(exited.secondsText)s after"
                    + " SIGTERM, all 256 lanes held again \(handedOver.secondsText)s after it")
            #expect(ledger.lost.isEmpty, "\(ledger)")
            #expect(ledger.orderViolations.isEmpty, "\(ledger)")
            #expect(ledger.duplicatedIDs(involving: c).isEmpty, "c acked everything it produced before leaving: \(ledger)")
            #expect(ledger.duplicates == 0, "no crash, no pause: no duplicate at all: \(ledger)")
            #expect((ledger.recordsBySource[d] ?? 0) > 0, "d published")
            #expect(ledger.unexpected.isEmpty && ledger.keyMismatches == 0)
        }
    }

    // MARK: PostgreSQL restart

    @Test func postgresRestartMidDrainRelaysReconnectAndLoseNothing() async throws {
        try await Fleet.with { fleet in
            _ = try await fleet.startBalanced("a", "b", "c", logLevel: ProcessInfo.processInfo.environment["FLEET_RELAY_LOG_LEVEL"] ?? "info")
            let expected = try await fleet.enqueue(60_000, keys: 300)
            try await fleet.waitUntil("the drain is under way", timeout: .seconds(120)) {
                try await fleet.pending() <= 55_000
            }
            let restartedAt = ContinuousClock.now
            do {
                try TestServices.services("restart-postgres")
            } catch {
                try? TestServices.services("start-postgres")
                throw error
            }
            let downFor = ContinuousClock.now - restartedAt
            let pendingAfterRestart = try await fleet.retrying { try await fleet.pending() }
            try await fleet.drainAndStop(expectingExitZero: ["a", "b", "c"])
            let drainedAfter = ContinuousClock.now - restartedAt

            let ledger = try await fleet.ledger(expected)
            let reconnectLogs = fleet.relays.values.filter { $0.standardError.contains("database unavailable") }.count
            fleet.measure(
                "postgres-restart", "60000 msgs/300 keys, 3 relays: \(ledger); restart took \(downFor.secondsText)s,"
                    + " \(pendingAfterRestart) pending after it, drained \(drainedAfter.secondsText)s after the restart began;"
                    + " relays that logged the outage: \(reconnectLogs)")
            #expect(pendingAfterRestart > 0, "restarted mid-drain")
            #expect(ledger.lost.isEmpty, "\(ledger)")
            #expect(ledger.orderViolations.isEmpty, "\(ledger)")
            #expect(ledger.duplicates <= 3 * Self.batchSize, "at most one batch per relay: \(ledger)")
            #expect(ledger.unexpected.isEmpty && ledger.keyMismatches == 0)
            #expect(ledger.deadLettered.isEmpty, "an outage is not poison")
        }
    }

    // MARK: Broker restart

    /// Tansu keeps records in memory only: a restart loses every topic and record. The accounting:
    /// the relay deletes a row only after the broker acknowledged it, so an id that is no longer in
    /// the outbox was acknowledged by the *old* broker and is legitimately gone from both. Every id
    /// still in the outbox once the broker is down and the relays have settled their batches (no
    /// ack can happen after that until the broker is back, since nothing can be delivered) must be
    /// on the topic afterwards; and nothing else may be (ids acked before the restart are not
    /// published again). First deliveries among the records after the restart keep key order.
    @Test func brokerRestartMidDrainPublishesEverythingStillPendingAfterwards() async throws {
        try await Fleet.with { fleet in
            // Small batches and many messages: `stop-broker` can take up to 10 s (Tansu may need a
            // SIGKILL after its SIGTERM grace), and the broker must go down mid-drain.
            let batchSize = 100
            let relayOptions = ["--kafka-message-timeout", "3s", "--batch-size", "\(batchSize)"]
            _ = try await fleet.start("a", extra: relayOptions)
            _ = try await fleet.start("b", extra: relayOptions)
            let expected = try await fleet.enqueue(200_000, keys: 300)
            try await fleet.waitUntil("the drain is under way", timeout: .seconds(120)) {
                try await fleet.pending() <= 198_000
            }
            var pendingWhileDown: Set<Int64> = []
            do {
                try TestServices.services("stop-broker")
                // Settled: the outbox has not changed for longer than the delivery timeout, so
                // every batch produced before the stop was acked (delivered) or given up (outage).
                var last = try await fleet.pending()
                var stableSince = ContinuousClock.now
                while ContinuousClock.now - stableSince < .seconds(5) {
                    try await Task.sleep(for: .milliseconds(250))
                    let now = try await fleet.pending()
                    if now != last { (last, stableSince) = (now, ContinuousClock.now) }
                }
                pendingWhileDown = try await fleet.pendingIDs()
                #expect(try await fleet.fixture.scalar("SELECT coalesce(max(attempts), 0) FROM {schema}.messages", as: Int32.self) == 0)
                try TestServices.services("start-broker")
            } catch {
                try? TestServices.services("start-broker")
                throw error
            }
            try await fleet.drainAndStop(expectingExitZero: ["a", "b"])

            // Over everything enqueued: a broker that keeps its data across a graceful restart
            // (noida-db) still holds what was acked before it; one that does not (Tansu) lost it,
            // which is the broker's loss, not the relay's — so only the pending ids must be there.
            let ledger = try await fleet.ledger(expected)
            let lostPending = ledger.lost.filter { pendingWhileDown.contains($0) }
            let ackedBefore = Set(expected.keys).subtracting(pendingWhileDown)
            let publishedAgain = ledger.duplicatedIDs.filter { ackedBefore.contains($0) }
            let keptAcrossRestart = ackedBefore.filter { ledger.copies[$0] != nil }.count
            let resumed = fleet.relays.values.filter { $0.standardError.contains("broker reachable again; resuming") }.count
            let replaced = fleet.relays.values.filter { $0.standardError.contains("replaced the Kafka producer") }.count
            fleet.measure(
                "broker-restart", "200000 msgs/300 keys, 2 relays (batch \(batchSize)), \(pendingWhileDown.count) pending while the broker was"
                    + " down (the rest acked by the old broker; \(keptAcrossRestart) of them kept across its restart): \(ledger); relays that resumed after"
                    + " pausing: \(resumed), that replaced their producer: \(replaced)")
            #expect(!pendingWhileDown.isEmpty && pendingWhileDown.count < expected.count, "restarted mid-drain")
            #expect(lostPending.isEmpty, "everything pending at the restart published afterwards: \(lostPending.prefix(10)) \(ledger)")
            #expect(publishedAgain.isEmpty, "nothing acked before the restart published again: \(publishedAgain.prefix(10))")
            #expect(ledger.unexpected.isEmpty, "\(ledger)")
            #expect(ledger.orderViolations.isEmpty, "\(ledger)")
            #expect(ledger.duplicates <= 2 * batchSize, "at most one batch per relay: \(ledger)")
            #expect(ledger.deadLettered.isEmpty, "an outage is not poison")
            #expect(resumed >= 1, "a relay paused for the outage and resumed by itself")
        }
    }

    // MARK: The epoch fence itself

    /// The database side of fencing, without timing: a relay whose lanes were taken over (new
    /// epoch) can neither renew, release, ack, retry nor dead-letter them, even though it still
    /// believes it holds them (its local deadline is bypassed here on purpose).
    @Test func staleEpochWritesMatchNothing() async throws {
        try await OutboxFixture.with { fixture in
            let ids = try await fixture.enqueue((0..<50).map { OutboxMessage(topic: fixture.topic, key: "k-\($0 % 5)", payload: "\($0)") })
            let old = RelayStore(client: fixture.client, schema: fixture.schema, relayID: "old")
            let new = RelayStore(client: fixture.client, schema: fixture.schema, relayID: "new")
            let oldLeases = try await old.claim(count: 256, ttl: .milliseconds(200), logger: fixture.logger)
            #expect(oldLeases.count == 256)
            #expect(try await new.claim(count: 256, ttl: .seconds(30), logger: fixture.logger).isEmpty, "leases still valid")
            try await Task.sleep(for: .milliseconds(400))
            let newLeases = try await new.claim(count: 256, ttl: .seconds(30), logger: fixture.logger)
            #expect(newLeases.count == 256)
            #expect(zip(oldLeases.sorted { $0.lane < $1.lane }, newLeases.sorted { $0.lane < $1.lane }).allSatisfy { $1.epoch == $0.epoch + 1 })

            #expect(try await old.renew(oldLeases, ttl: .seconds(30), logger: fixture.logger).isEmpty)
            #expect(try await old.ack(ids: ids, leases: oldLeases, logger: fixture.logger).rows == 0)
            #expect(try await old.retry(ids.map { RetryDecision(id: $0, delayMilliseconds: 10, error: "late") }, leases: oldLeases, logger: fixture.logger).rows == 0)
            #expect(
                try await old.deadLetter(
                    ids.map { DeadLetterDecision(id: $0, reason: .brokerRejected, error: "late", attempts: 1) }, leases: oldLeases,
                    logger: fixture.logger).rows == 0)
            try await old.release(oldLeases, logger: fixture.logger)
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.lanes WHERE owner = 'new'", as: Int64.self) == 256)
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages WHERE attempts = 0", as: Int64.self) == 50)
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.dead_letters", as: Int64.self) == 0)
            // Even the new owner's old epoch of one lane is fenced: epochs, not names, decide.
            #expect(try await new.ack(ids: ids, leases: newLeases.map { LaneLease(lane: $0.lane, epoch: $0.epoch - 1) }, logger: fixture.logger).rows == 0)
            // A fence of some lanes writes exactly their rows (the fence is a mask of lane bits).
            let evenLanes = newLeases.filter { $0.lane % 2 == 0 }
            let even = try await fixture.scalar("SELECT count(*) FROM {schema}.messages WHERE lane % 2 = 0", as: Int64.self)
            #expect(even > 0 && even < 50, "both kinds of lane have rows")
            let evenAck = try await new.ack(ids: ids, leases: evenLanes, logger: fixture.logger)
            #expect(evenAck.rows == Int(even) && evenAck.lanesHeld == Set(evenLanes.map(\.lane)))
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages WHERE lane % 2 = 0", as: Int64.self) == 0)
            #expect(try await new.ack(ids: ids, leases: newLeases, logger: fixture.logger).rows == 50 - Int(even))
            #expect(try await old.releaseAllOwned(logger: fixture.logger) == 0)
            #expect(try await new.releaseAllOwned(logger: fixture.logger) == 256)
        }
    }
}

// MARK: - The fleet harness

/// Relay processes for one scenario, over one fixture (schema and topic of its own).
final class Fleet: @unchecked Sendable {
    let fixture: OutboxFixture
    /// Relay id → process. Ids are short names plus a random suffix (`a_123…`).
    var relays: [String: ChildProcess] = [:]
    var names: [String: String] = [:]
    var roles: [String] = []
    /// Relays already reaped: never signalled again (their pid may belong to someone else now).
    var exited: Set<String> = []

    init(fixture: OutboxFixture) {
        self.fixture = fixture
    }

    static func with(_ body: @Sendable @escaping (Fleet) async throws -> Void) async throws {
        try await OutboxFixture.with { fixture in
            let fleet = Fleet(fixture: fixture)
            do {
                try await body(fleet)
            } catch {
                await fleet.killAll()
                await fleet.dropRoles()
                throw error
            }
            await fleet.killAll()
            await fleet.dropRoles()
        }
    }

    /// Starts `outbox-relay run` as a process; returns its relay id. With `ownRole`, it connects as a
    /// database role named like the relay id (created here, dropped at the end).
    @discardableResult
    func start(
        _ name: String, extra: [String] = [], ownRole: Bool = false, logLevel: String = "info", databasePort: Int? = nil
    ) async throws -> String {
        let id = TestServices.uniqueName(name)
        names[name] = id
        var databaseURL = TestServices.databaseURL
        if let databasePort {
            // Through a fault proxy.
            var components = URLComponents(string: databaseURL)!
            components.port = databasePort
            databaseURL = components.string!
        }
        if ownRole {
            roles.append(id)
            try await fixture.client.query(PostgresQuery(unsafeSQL: "CREATE ROLE \(id) LOGIN SUPERUSER"), logger: fixture.logger)
            var components = URLComponents(string: databaseURL)!
            components.user = id
            databaseURL = components.string!
        }
        let arguments = [
            "run", "--relay-id", id,
            "--lease-ttl", "\(FleetTests.leaseTTL.components.seconds)s",
            "--renew-interval", "\(FleetTests.renewInterval.components.seconds)s",
            "--poll-interval", "200ms", "--batch-size", "\(FleetTests.batchSize)",
        ] + extra
        relays[id] = try ChildProcess(
            ChildProcess.relayBinary, arguments,
            environment: ChildProcess.environment([
                "OUTBOX_DATABASE_URL": databaseURL, "OUTBOX_KAFKA_BROKERS": TestServices.brokers,
                "OUTBOX_SCHEMA": fixture.schema.rawValue, "OUTBOX_LOG_LEVEL": logLevel,
                // Several relays on one host: no fixed HTTP port for /metrics (it would collide).
                "OUTBOX_HTTP_ADDRESS": "off",
            ]))
        return id
    }

    /// Starts three relays and waits until they share the lanes evenly (each within two lanes of
    /// its fair share, every lane held), so a fault hits a relay in its steady state.
    func startBalanced(
        _ x: String, _ y: String, _ z: String, ownRole: Bool = false, logLevel: String = "info"
    ) async throws -> (String, String, String) {
        let ids = (
            try await start(x, ownRole: ownRole, logLevel: logLevel), try await start(y, ownRole: ownRole, logLevel: logLevel),
            try await start(z, ownRole: ownRole, logLevel: logLevel)
        )
        try await waitUntilBalanced(3)
        return ids
    }

    /// Waits until `count` relays hold every lane between them, each within two lanes of its fair
    /// share (84 of 256 for three).
    func waitUntilBalanced(_ count: Int) async throws {
        do {
            try await waitUntil("\(count) relays share the lanes", timeout: .seconds(60)) {
                let owners = try await owners()
                return owners.count == count && owners.values.allSatisfy { $0 >= 256 / count - 1 } && owners.values.reduce(0, +) == 256
            }
        } catch {
            // Say why: who holds what, and each relay's last log lines.
            let owners = (try? await owners()) ?? [:]
            let logs = relays.map { "\($0.key): \($0.value.standardError.suffix(1500))" }.joined(separator: "\n---\n")
            Issue.record("lanes by owner: \(owners)\n\(logs)")
            throw error
        }
    }

    /// Waits until the only relay, serving its endpoints on `port`, says it is ready holding every lane.
    func waitUntilReadyHoldingEveryLane(port: Int) async throws {
        try await waitUntil("the relay is ready", timeout: .seconds(60)) {
            (try? HTTPGet.get(port: port, path: "/readyz"))?.body.hasPrefix("ok: holds 256") == true
        }
    }

    /// Enqueues `count` messages with keys interleaved (`key-(n % keys)`, n counting on from
    /// `first`), returns id → key.
    ///
    /// One plain INSERT … SELECT from generate_series (ids follow n) plus one NOTIFY: the same
    /// rows `enqueue()` writes (the lane is a generated column), many times faster, so scenarios
    /// spend their time relaying rather than enqueueing.
    func enqueue(_ count: Int, keys: Int, first: Int = 0) async throws -> [Int64: String] {
        let s = fixture.schema.rawValue
        var binds = PostgresBindings()
        binds.append(fixture.topic)
        binds.append(first)
        binds.append(first + count - 1)
        binds.append(keys)
        let rows = try await fixture.client.query(
            PostgresQuery(
                unsafeSQL: """
                    WITH inserted AS (
                        INSERT INTO \(s).messages (topic, key, payload)
                        SELECT $1, convert_to('key-' || (n % $4), 'UTF8'), convert_to('payload-' || n, 'UTF8')
                        FROM generate_series($2::int, $3::int) AS n ORDER BY n
                        RETURNING id, key)
                    SELECT id, convert_from(key, 'UTF8') FROM inserted
                    """, binds: binds), logger: fixture.logger)
        var expected: [Int64: String] = [:]
        expected.reserveCapacity(count)
        for try await (id, key) in rows.decode((Int64, String).self) { expected[id] = key }
        try await fixture.client.query(PostgresQuery(unsafeSQL: "SELECT pg_notify('\(s)_messages', '')"), logger: fixture.logger)
        return expected
    }

    func pending() async throws -> Int64 {
        try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self)
    }

    func pendingIDs() async throws -> Set<Int64> {
        var ids = Set<Int64>()
        let rows = try await fixture.client.query(
            PostgresQuery(unsafeSQL: "SELECT id FROM \(fixture.schema.rawValue).messages"), logger: fixture.logger)
        for try await id in rows.decode(Int64.self) { ids.insert(id) }
        return ids
    }

    func lanesOwned(by relay: String) async throws -> Int {
        var binds = PostgresBindings()
        binds.append(relay)
        let rows = try await fixture.client.query(
            PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(fixture.schema.rawValue).lanes WHERE owner = $1", binds: binds),
            logger: fixture.logger)
        for try await count in rows.decode(Int64.self) { return Int(count) }
        return 0
    }

    /// Lanes held (with a valid lease) per owner.
    func owners() async throws -> [String: Int] {
        var owners: [String: Int] = [:]
        let rows = try await fixture.client.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT owner, count(*) FROM \(fixture.schema.rawValue).lanes
                    WHERE owner IS NOT NULL AND lease_expires_at > now() GROUP BY owner
                    """), logger: fixture.logger)
        for try await (owner, count) in rows.decode((String, Int64).self) { owners[owner] = Int(count) }
        return owners
    }

    func deadLetteredIDs() async throws -> Set<Int64> {
        var ids = Set<Int64>()
        let rows = try await fixture.client.query(
            PostgresQuery(unsafeSQL: "SELECT id FROM \(fixture.schema.rawValue).dead_letters"), logger: fixture.logger)
        for try await id in rows.decode(Int64.self) { ids.insert(id) }
        return ids
    }

    /// `outbox-relay status --json`, decoded.
    func status() async throws -> StatusReport {
        let result = try await ChildProcess.runRelay(
            ["status", "--json"],
            environment: ChildProcess.environment([
                "OUTBOX_DATABASE_URL": TestServices.databaseURL, "OUTBOX_SCHEMA": fixture.schema.rawValue,
                // Liveness is judged against the fleet's lease TTL.
                "OUTBOX_LEASE_TTL": "\(FleetTests.leaseTTL.components.seconds)s",
                "OUTBOX_RENEW_INTERVAL": "\(FleetTests.renewInterval.components.seconds)s",
            ]))
        guard result.code == 0 else { throw Fleet.Failure(message: "status failed: \(result.stderr)") }
        return try JSONDecoder().decode(StatusReport.self, from: Data(result.stdout.utf8))
    }

    /// Polls `condition` until it holds (errors count as "not yet": services may be restarting).
    func waitUntil(
        _ what: String, timeout: Duration, poll: Duration = .milliseconds(100), _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastError: Error?
        while ContinuousClock.now < deadline {
            do {
                if try await condition() { return }
            } catch {
                lastError = error
            }
            try await Task.sleep(for: poll)
        }
        throw Failure(message: "timed out after \(timeout) waiting until \(what)\(lastError.map { " (last error: \($0))" } ?? "")")
    }

    /// Retries a query while the database comes back.
    func retrying<T>(_ body: () async throws -> T) async throws -> T {
        var attempts = 0
        while true {
            do { return try await body() } catch {
                attempts += 1
                if attempts > 100 { throw error }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    /// Waits until the outbox is empty, then SIGTERMs every running relay and expects exit 0 from
    /// those named.
    func drainAndStop(expectingExitZero named: [String], timeout: Duration = .seconds(Int64(ProcessInfo.processInfo.environment["FLEET_DRAIN_TIMEOUT"] ?? "") ?? 60)) async throws {
        do {
            try await waitUntil("the outbox is drained", timeout: timeout, poll: .milliseconds(200)) {
                try await pending() == 0
            }
        } catch {
            // What each relay was doing, for the failure report (CI keeps nothing else).
            let owners = (try? await owners()).map { "\($0)" } ?? "unknown"
            let pending = (try? await pending()).map { "\($0)" } ?? "unknown"
            let logs = relays.map { id, relay in "--- \(id) (last lines):\n\(relay.standardError.suffix(2500))" }.joined(separator: "\n")
            throw Failure(message: "\(error); \(pending) pending, lanes held \(owners)\n\(logs)")
        }
        let expected = Set(named.compactMap { names[$0] })
        for id in relays.keys {
            signal(id, SIGCONT)
            signal(id, SIGTERM)
        }
        for (id, relay) in relays where !exited.contains(id) {
            let code = await relay.wait(timeout: .seconds(30))
            exited.insert(id)
            if expected.contains(id) {
                #expect(code == 0, "relay \(id) exit code; stderr: \(relay.standardError.suffix(2000))")
            }
        }
    }

    /// Every record of the fixture's topic, against the expected ids and the dead-letter table.
    func ledger(_ expected: [Int64: String]) async throws -> Ledger {
        try Ledger(records: try await fixture.readTopic(), expected: expected, deadLettered: try await deadLetteredIDs())
    }

    /// An AFTER DELETE trigger on the messages: who deleted each row, and who owned its lane then.
    func installDeleteAudit() async throws {
        let s = fixture.schema.rawValue
        for statement in [
            "CREATE TABLE \(s).delete_audit (id bigint, lane smallint, deleted_by text, owner text, at timestamptz)",
            """
            CREATE FUNCTION \(s).audit_delete() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO \(s).delete_audit
                SELECT OLD.id, OLD.lane, session_user, l.owner, clock_timestamp()
                FROM \(s).lanes l WHERE l.lane = OLD.lane;
                RETURN OLD;
            END $$
            """,
            "CREATE TRIGGER audit_delete AFTER DELETE ON \(s).messages FOR EACH ROW EXECUTE FUNCTION \(s).audit_delete()",
        ] {
            try await fixture.client.query(PostgresQuery(unsafeSQL: statement), logger: fixture.logger)
        }
    }

    func signal(_ id: String, _ signal: Int32) {
        guard !exited.contains(id) else { return }
        relays[id]?.signal(signal)
    }

    /// Signals a relay and waits for it to exit; returns its exit code (nil if it did not exit).
    func stop(_ id: String, _ signal: Int32, timeout: Duration = .seconds(30)) async -> Int32? {
        guard let relay = relays[id], !exited.contains(id) else { return nil }
        relay.signal(signal)
        let code = await relay.wait(timeout: timeout)
        exited.insert(id)
        return code
    }

    func killAll() async {
        for id in relays.keys where !exited.contains(id) {
            signal(id, SIGCONT)
            _ = await stop(id, SIGKILL, timeout: .seconds(10))
        }
    }

    func dropRoles() async {
        for role in roles {
            _ = try? await fixture.client.query(PostgresQuery(unsafeSQL: "DROP ROLE IF EXISTS \(role)"), logger: fixture.logger)
        }
    }

    /// Appends a measurement to /tmp/fleet-measurements.txt (timings are reported, not asserted).
    func measure(_ scenario: String, _ text: String) {
        Measurements.record(scenario, text)
    }

    struct Failure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}

extension Duration {
    /// Seconds with two decimals, for measurement lines.
    var secondsText: String {
        let (seconds, attoseconds) = components
        return String(format: "%.2f", Double(seconds) + Double(attoseconds) / 1e18)
    }
}
