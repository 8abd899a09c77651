import Foundation
import Logging
import NIOCore
import Outbox
import OutboxEnvelope
import OutboxRelay
import PostgresNIO
import OutboxTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `dlq list|show|stats|replay|purge` against real PostgreSQL and the real broker: poison of every
/// reason ends in the table, is replayed once after its cause is fixed, concurrent replays never
/// replay twice, dry runs change nothing and purge touches only what the filter selects.
///
/// Tansu cannot be made to reject a record or to fail retriably on demand, so the two reasons that
/// need that (`broker_rejected`, `attempts_exhausted`) are written into `dead_letters` with SQL,
/// as the relay's dead-letter statement would write them; every other reason is produced by a relay.
@Suite(.serialized) struct DeadLetterTests {
    // MARK: Reasons, replay after the fix, ordering rule

    @Test func poisonOfEveryReasonIsDeadLetteredAndPublishedExactlyOnceMoreAfterTheFix() async throws {
        try await OutboxFixture.with { fixture in
            let store = DeadLetterStore(client: fixture.client, schema: fixture.schema)
            let logger = fixture.logger
            let bigPayload = [UInt8](repeating: 0x42, count: 8_000)
            let poisonIDs = try await fixture.enqueue([
                OutboxMessage(topic: fixture.topic, key: "big", payload: bigPayload, headers: ["h": "1"], type: "big.event"),
                OutboxMessage(topic: "bad topic!", key: "bad", payload: "to the wrong topic"),
            ])
            let (bigID, badTopicID) = (poisonIDs[0], poisonIDs[1])
            let okIDs = try await fixture.enqueue(
                (0..<20).map { OutboxMessage(topic: fixture.topic, key: "ok-\($0 % 4)", payload: "ok-\($0)") })
            // Headers that are not a JSON object can only be written past enqueue(), which refuses them.
            let undecodableID = try await fixture.scalar(
                """
                INSERT INTO {schema}.messages (topic, key, payload, headers)
                VALUES ('\(fixture.topic)', convert_to('odd', 'UTF8'), convert_to('odd headers', 'UTF8'), '["not", "an", "object"]')
                RETURNING id
                """, as: Int64.self)
            let rejectedID = try await Self.insertDeadLetter(fixture, topic: fixture.topic, key: "rejected", reason: .brokerRejected)
            let exhaustedID = try await Self.insertDeadLetter(fixture, topic: fixture.topic, key: "exhausted", reason: .attemptsExhausted)

            try await fixture.drain(fixture.relayConfiguration { $0.maximumMessageBytes = 4096 })

            let (rows, more) = try await store.list(DeadLetterFilter(), limit: 100, logger: logger)
            #expect(!more)
            #expect(Dictionary(uniqueKeysWithValues: rows.map { ($0.id, $0.reason) }) == [
                bigID: "message_too_large", badTopicID: "invalid_topic", undecodableID: "undecodable",
                rejectedID: "broker_rejected", exhaustedID: "attempts_exhausted",
            ])
            let stats = try await store.stats(DeadLetterFilter(), logger: logger)
            #expect(stats.total == 5)
            #expect(Set(stats.groups.map(\.reason)) == Set(DeadLetterReason.allCases.map(\.rawValue)))
            let before = try await fixture.readTopic()
            #expect(Set(try before.map { try Envelope(serializedBytes: $0.value).sequence }) == Set(okIDs))

            // Pending for key "big" when the replay happens: the replay must be published after it.
            let pendingBigID = try await fixture.enqueue([OutboxMessage(topic: fixture.topic, key: "big", payload: "pending before the replay")])[0]

            // Too large: the limit is raised (the drain below uses the default 1 MB).
            let tooLarge = try await store.replay(
                DeadLetterReplayRequest(filter: try DeadLetterFilter.parse(reasons: ["message_too_large"]), actor: "test"), logger: logger)
            #expect(tooLarge.replayed.map(\.deadLetterID) == [bigID])
            #expect(tooLarge.replayed[0].outboxID > pendingBigID, "replayed messages come after what is pending for their key")
            // Invalid topic: redirected to a valid one.
            let redirected = try await store.replay(
                DeadLetterReplayRequest(filter: try DeadLetterFilter.parse(reasons: ["invalid_topic"]), toTopic: fixture.topic, actor: "test"),
                logger: logger)
            #expect(redirected.replayed.map(\.deadLetterID) == [badTopicID])
            // Rejected / exhausted: the cause was outside the message (permissions, broker health).
            let external = try await store.replay(
                DeadLetterReplayRequest(
                    filter: try DeadLetterFilter.parse(reasons: ["broker_rejected", "attempts_exhausted"]), actor: "test"), logger: logger)
            #expect(external.replayed.map(\.deadLetterID) == [rejectedID, exhaustedID].sorted())
            // Undecodable: nothing was fixed, so it must die again, pointing back at the first dead letter.
            let unfixed = try await store.replay(
                DeadLetterReplayRequest(filter: try DeadLetterFilter.parse(ids: ["\(undecodableID)"]), actor: "test"), logger: logger)
            try #require(unfixed.count == 1)
            // Everything was replayed: a second replay finds nothing.
            #expect(try await store.replay(DeadLetterReplayRequest(filter: DeadLetterFilter(), actor: "test"), logger: logger).count == 0)

            try await fixture.drain(fixture.relayConfiguration())

            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0)
            let diedAgainID = unfixed.replayed[0].outboxID
            let diedAgain = try await store.show(id: diedAgainID, logger: logger)
            #expect(diedAgain.summary.reason == "undecodable")
            #expect(diedAgain.replayOf == undecodableID)
            #expect(try await store.show(id: undecodableID, logger: logger).replayState == "dead again")
            let big = try await store.show(id: bigID, logger: logger)
            #expect(big.summary.status == .replayed)
            #expect(big.replayState == "published")
            #expect(big.lastAction?.action == "replay")
            #expect(big.lastAction?.actor == "test")

            let records = try await fixture.readTopic()
                .sorted { ($0.partition, $0.offset) < ($1.partition, $1.offset) }
            let envelopes = try records.map { try Envelope(serializedBytes: $0.value) }
            let replayed = tooLarge.replayed + redirected.replayed + external.replayed
            #expect(envelopes.count == okIDs.count + 1 + replayed.count, "each replay published once, nothing else twice")
            #expect(Set(envelopes.map(\.sequence)).count == envelopes.count)
            for pair in replayed {
                let published = envelopes.filter { $0.sequence == pair.outboxID }
                #expect(published.count == 1, "dead letter \(pair.deadLetterID) published exactly once more")
                #expect(published.first?.headers["outbox-replay-of"] == "\(pair.deadLetterID)")
            }
            let bigEnvelope = try #require(envelopes.first { $0.sequence == tooLarge.replayed[0].outboxID })
            #expect(Array(bigEnvelope.payload) == bigPayload)
            #expect(bigEnvelope.type == "big.event")
            #expect(bigEnvelope.headers["h"] == "1")
            let redirectedEnvelope = try #require(envelopes.first { $0.sequence == redirected.replayed[0].outboxID })
            #expect(String(decoding: redirectedEnvelope.payload, as: UTF8.self) == "to the wrong topic")
            #expect(String(decoding: redirectedEnvelope.key, as: UTF8.self) == "bad")
            // Same key, same partition: the pending message was published before the replay.
            let bigRecords = records.filter { $0.key == Array("big".utf8) }
            #expect(try bigRecords.map { try Envelope(serializedBytes: $0.value).sequence } == [pendingBigID, tooLarge.replayed[0].outboxID])
        }
    }

    // MARK: Concurrency

    @Test func concurrentReplaysReplayEveryDeadLetterExactlyOnce() async throws {
        try await OutboxFixture.with { fixture in
            try await Self.insertDeadLetters(fixture, count: 1000, topic: fixture.topic, reason: .brokerRejected)
            let store = DeadLetterStore(client: fixture.client, schema: fixture.schema)
            let results = try await withThrowingTaskGroup(of: DeadLetterReplayResult.self) { group in
                for operator_ in 0..<4 {
                    group.addTask {
                        try await store.replay(
                            DeadLetterReplayRequest(filter: DeadLetterFilter(), batchSize: 25, actor: "operator-\(operator_)"),
                            logger: fixture.logger)
                    }
                }
                var results: [DeadLetterReplayResult] = []
                for try await result in group { results.append(result) }
                return results
            }
            let pairs = results.flatMap(\.replayed)
            // Observed splits: e.g. [225, 250, 275, 250] — the replays really run side by side.
            #expect(results.map(\.count).reduce(0, +) == 1000)
            #expect(Set(pairs.map(\.deadLetterID)).count == 1000)
            #expect(Set(pairs.map(\.outboxID)).count == 1000)
            for result in results {
                // One command hands out new ids in dead-letter id order.
                #expect(result.replayed.map(\.outboxID) == result.replayed.map(\.outboxID).sorted())
            }
            try await Self.expectReplayedExactlyOnce(fixture, total: 1000, invocations: 4)
        }
    }

    // MARK: Dry run

    @Test func dryRunChangesNothing() async throws {
        try await OutboxFixture.with { fixture in
            try await Self.insertDeadLetters(fixture, count: 30, topic: fixture.topic, reason: .brokerRejected)
            try await Self.insertDeadLetters(fixture, count: 20, topic: "other", reason: .attemptsExhausted)
            let store = DeadLetterStore(client: fixture.client, schema: fixture.schema)
            let before = try await Self.contentHash(fixture)

            let replay = try await store.replay(
                DeadLetterReplayRequest(filter: try DeadLetterFilter.parse(reasons: ["broker_rejected"]), dryRun: true, actor: "test"),
                logger: fixture.logger)
            #expect(replay.count == 30)
            #expect(replay.wouldReplay.count == 30)
            #expect(replay.replayed.isEmpty)
            let purge = try await store.purge(
                DeadLetterPurgeRequest(filter: DeadLetterFilter(statuses: [.dead, .replayed]), limit: 45, dryRun: true, actor: "test"),
                logger: fixture.logger)
            #expect(purge.count == 45)
            let cli = try await DeadLetterCLI.run(["dlq", "replay", "--dry-run", "--to-topic", "elsewhere"], fixture: fixture)
            #expect(cli.status == 0)
            #expect(cli.stdout.contains("dry run: would replay 50 dead letter(s) to topic elsewhere; nothing changed"))

            #expect(try await Self.contentHash(fixture) == before)
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0)
            // Dry runs are audited as such, with what they would have done.
            #expect(try await fixture.scalar(
                "SELECT string_agg(action || ':' || count, ',' ORDER BY id) FROM {schema}.dlq_audit WHERE dry_run", as: String.self)
                == "replay:30,purge:45,replay:50")
            // And what a dry run announces is what the real run does.
            let real = try await store.replay(
                DeadLetterReplayRequest(filter: try DeadLetterFilter.parse(reasons: ["broker_rejected"]), actor: "test"), logger: fixture.logger)
            #expect(real.replayed.map(\.deadLetterID) == replay.wouldReplay.map(\.id))
        }
    }

    // MARK: Purge

    @Test func purgeDropsOnlyWhatTheFilterSelects() async throws {
        try await OutboxFixture.with { fixture in
            let old = try await Self.insertDeadLetters(fixture, count: 10, topic: "a", reason: .brokerRejected, deadAgo: "3 days")
            let recent = try await Self.insertDeadLetters(fixture, count: 10, topic: "a", reason: .brokerRejected, deadAgo: "1 hour")
            let otherTopic = try await Self.insertDeadLetters(fixture, count: 10, topic: "b", reason: .brokerRejected, deadAgo: "3 days")
            let store = DeadLetterStore(client: fixture.client, schema: fixture.schema)
            let untouched = "WHERE id <> ALL(ARRAY[\(old.map(String.init).joined(separator: ","))]::int8[])"
            let otherHash = try await Self.contentHash(fixture, where: untouched)
            let metadataBefore = try await Self.contentHash(fixture, columns: "id, topic, key, headers, reason, error, dead_at, created_at")

            var filter = try DeadLetterFilter.parse(topics: ["a"])
            filter.until = try DeadLetterTimeBound.parse("2d", option: "--older-than")
            let purged = try await store.purge(DeadLetterPurgeRequest(filter: filter, batchSize: 3, actor: "test"), logger: fixture.logger)
            #expect(purged.purged == old)

            #expect(try await Self.contentHash(fixture, where: untouched) == otherHash, "rows outside the filter are untouched")
            #expect(try await Self.contentHash(fixture, columns: "id, topic, key, headers, reason, error, dead_at, created_at") == metadataBefore,
                    "purge keeps the metadata")
            #expect(try await fixture.scalar(
                """
                SELECT count(*) FROM {schema}.dead_letters d JOIN {schema}.dlq_audit a ON a.id = d.audit_id
                WHERE d.status = 'purged' AND octet_length(d.payload) = 0 AND d.purged_at IS NOT NULL AND a.action = 'purge'
                """, as: Int64.self) == 10)
            #expect(try await fixture.scalar("SELECT count FROM {schema}.dlq_audit WHERE id = \(purged.auditID)", as: Int32.self) == 10)
            // Again: nothing left to purge; purged rows can no longer be replayed.
            #expect(try await store.purge(DeadLetterPurgeRequest(filter: filter, actor: "test"), logger: fixture.logger).count == 0)
            let replay = try await store.replay(
                DeadLetterReplayRequest(filter: try DeadLetterFilter.parse(topics: ["a"]), actor: "test"), logger: fixture.logger)
            #expect(replay.replayed.map(\.deadLetterID) == recent)
            #expect(try await store.list(try DeadLetterFilter.parse(topics: ["b"]), limit: 100, logger: fixture.logger).rows.map(\.id) == otherTopic)
        }
    }

    // MARK: The command line

    @Test func commandLineListsAsJSONRefusesBadFiltersAndSaysWhenNothingMatches() async throws {
        try await OutboxFixture.with { fixture in
            let ids = try await Self.insertDeadLetters(fixture, count: 3, topic: fixture.topic, reason: .invalidTopic)
            let hash = try await Self.contentHash(fixture)

            let list = try await DeadLetterCLI.run(["dlq", "list", "--json"], fixture: fixture)
            #expect(list.status == 0, "stderr: \(list.stderr)")
            struct ListOutput: Decodable { var deadLetters: [DeadLetterSummary]; var more: Bool }
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let output = try decoder.decode(ListOutput.self, from: Data(list.stdout.utf8))
            #expect(output.deadLetters.map(\.id) == ids)
            #expect(output.deadLetters.allSatisfy { $0.reason == "invalid_topic" && $0.status == .dead })
            #expect(!output.more)

            let badTime = try await DeadLetterCLI.run(["dlq", "list", "--since", "yesterday"], fixture: fixture)
            #expect(badTime.status == 2)
            #expect(badTime.stderr.hasPrefix("outbox-relay: invalid filter: --since: \"yesterday\" is neither a time nor a duration"))
            #expect(badTime.stderr.split(separator: "\n").count == 1, "one line")
            #expect(badTime.stdout.isEmpty)
            let badReason = try await DeadLetterCLI.run(["dlq", "replay", "--reason", "too_big"], fixture: fixture)
            #expect(badReason.status == 2)
            #expect(badReason.stderr.contains("unknown reason \"too_big\"; use one of message_too_large"))
            let badTopic = try await DeadLetterCLI.run(["dlq", "replay", "--to-topic", "bad topic!"], fixture: fixture)
            #expect(badTopic.status == 2)
            #expect(badTopic.stderr.contains("--to-topic"))
            let unconfirmed = try await DeadLetterCLI.run(["dlq", "purge", "--topic", fixture.topic], fixture: fixture)
            #expect(unconfirmed.status == 2)
            #expect(unconfirmed.stderr.contains("add --yes"))
            #expect(try await Self.contentHash(fixture) == hash, "refused commands change nothing")

            let empty = try await DeadLetterCLI.run(["dlq", "list", "--topic", "no-such-topic"], fixture: fixture)
            #expect(empty.status == 0)
            #expect(empty.stdout.hasPrefix("no dead letters match"))
            let emptyReplay = try await DeadLetterCLI.run(["dlq", "replay", "--reason", "undecodable"], fixture: fixture)
            #expect(emptyReplay.status == 0)
            #expect(emptyReplay.stdout.contains("nothing to replay"))

            let stats = try await DeadLetterCLI.run(["dlq", "stats"], fixture: fixture)
            #expect(stats.status == 0)
            #expect(stats.stdout.contains(fixture.topic) && stats.stdout.contains("invalid_topic") && stats.stdout.contains("total: 3"))
            let raw = try await DeadLetterCLI.run(["dlq", "show", "\(ids[0])", "--raw"], fixture: fixture)
            #expect(raw.status == 0)
            #expect(raw.stdout == "payload-1")
            let show = try await DeadLetterCLI.run(["dlq", "show", "\(ids[1])"], fixture: fixture)
            #expect(show.stdout.contains("reason        invalid_topic"))
            #expect(show.stdout.contains("payload-2"))
            let missing = try await DeadLetterCLI.run(["dlq", "show", "999999999"], fixture: fixture)
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("no dead letter with id 999999999"))
        }
    }

    @Test func twoReplayProcessesReplayEveryDeadLetterExactlyOnce() async throws {
        try await OutboxFixture.with { fixture in
            try await Self.insertDeadLetters(fixture, count: 1000, topic: fixture.topic, reason: .attemptsExhausted)
            let first = try DeadLetterCLI.spawn(
                ["dlq", "replay", "--batch-size", "10", "--json", "--actor", "first"], fixture: fixture)
            let second = try DeadLetterCLI.spawn(
                ["dlq", "replay", "--batch-size", "10", "--json", "--actor", "second"], fixture: fixture)
            let results = [try await first.wait(), try await second.wait()]
            var total = 0
            for result in results {
                #expect(result.status == 0, "stderr: \(result.stderr)")
                let decoded = try JSONDecoder().decode(DeadLetterReplayResult.self, from: Data(result.stdout.utf8))
                total += decoded.count
            }
            #expect(total == 1000)
            try await Self.expectReplayedExactlyOnce(fixture, total: 1000, invocations: 2)
        }
    }

    // MARK: Helpers

    /// The invariants of any set of finished replays over `total` dead letters.
    static func expectReplayedExactlyOnce(_ fixture: OutboxFixture, total: Int64, invocations: Int64) async throws {
        #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.dead_letters WHERE status = 'replayed'", as: Int64.self) == total)
        #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == total)
        #expect(try await fixture.scalar(
            "SELECT count(DISTINCT headers->>'outbox-replay-of') FROM {schema}.messages", as: Int64.self) == total, "no duplicates")
        // Every dead letter points at the message made from it, and only at that one.
        #expect(try await fixture.scalar(
            """
            SELECT count(*) FROM {schema}.dead_letters d JOIN {schema}.messages m ON m.id = d.replay_id
            WHERE m.headers->>'outbox-replay-of' = d.id::text AND m.payload = d.payload AND m.key = d.key
              AND m.topic = d.topic AND m.headers - 'outbox-replay-of' = d.headers
            """, as: Int64.self) == total)
        #expect(try await fixture.scalar(
            "SELECT count(*) FROM {schema}.dlq_audit WHERE action = 'replay' AND NOT dry_run", as: Int64.self) == invocations)
        #expect(try await fixture.scalar(
            "SELECT sum(count)::int8 FROM {schema}.dlq_audit WHERE action = 'replay' AND NOT dry_run", as: Int64.self) == total)
        // Each audit row counts exactly the rows it marked.
        #expect(try await fixture.scalar(
            """
            SELECT count(*) FROM {schema}.dlq_audit a
            WHERE a.count <> (SELECT count(*) FROM {schema}.dead_letters d WHERE d.audit_id = a.id)
            """, as: Int64.self) == 0)
    }

    /// A dead-letter row as the relay writes it (ids drawn from the outbox sequence, as real ones are).
    @discardableResult
    static func insertDeadLetter(_ fixture: OutboxFixture, topic: String, key: String, reason: DeadLetterReason) async throws -> Int64 {
        try await fixture.scalar(
            """
            INSERT INTO {schema}.dead_letters (id, topic, key, lane, payload, headers, created_at, attempts, reason, error, relay)
            SELECT id, '\(topic)', convert_to('\(key)', 'UTF8'), {schema}.lane_of(convert_to('\(key)', 'UTF8'), id),
                   convert_to('payload of \(key)', 'UTF8'), '{"origin": "sql"}', now(), 10, '\(reason.rawValue)', 'inserted by the test', 'test'
            FROM (SELECT nextval(pg_get_serial_sequence('{schema}.messages', 'id')) AS id) s
            RETURNING id
            """, as: Int64.self)
    }

    /// `count` dead letters with keys k-0…k-49 and payloads payload-1…; returns their ids ascending.
    @discardableResult
    static func insertDeadLetters(
        _ fixture: OutboxFixture, count: Int, topic: String, reason: DeadLetterReason, deadAgo: String = "1 minute"
    ) async throws -> [Int64] {
        let rows = try await fixture.client.query(
            PostgresQuery(
                unsafeSQL: """
                    INSERT INTO \(fixture.schema.rawValue).dead_letters
                        (id, topic, key, lane, payload, headers, created_at, dead_at, attempts, reason, error, relay)
                    SELECT nextval(pg_get_serial_sequence('\(fixture.schema.rawValue).messages', 'id')), '\(topic)',
                           convert_to('k-' || (g % 50), 'UTF8'), 0, convert_to('payload-' || g, 'UTF8'),
                           jsonb_build_object('n', g::text), now() - interval '\(deadAgo)' - interval '1 second',
                           now() - interval '\(deadAgo)', 3, '\(reason.rawValue)', 'error ' || g, 'test'
                    FROM generate_series(1, \(count)) AS g
                    ORDER BY g
                    RETURNING id
                    """), logger: fixture.logger)
        var ids: [Int64] = []
        for try await id in rows.decode(Int64.self) { ids.append(id) }
        return ids.sorted()
    }

    /// A hash of the dead letters' (and the outbox's) full contents.
    static func contentHash(_ fixture: OutboxFixture, where condition: String = "", columns: String? = nil) async throws -> String {
        let selected = columns.map { "(\($0))" } ?? "t"
        return try await fixture.scalar(
            """
            SELECT coalesce(md5(string_agg(\(selected)::text, ',' ORDER BY id)), 'empty')
                   || '/' || (SELECT coalesce(md5(string_agg(m::text, ',' ORDER BY id)), 'empty') FROM {schema}.messages m)
            FROM {schema}.dead_letters t \(condition)
            """, as: String.self)
    }
}

/// The real `outbox-relay` binary on the fixture's schema (through `ChildProcess`).
enum DeadLetterCLI {
    struct Result: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    struct Running: Sendable {
        let child: ChildProcess

        func wait() async throws -> Result {
            guard let status = await child.wait(timeout: .seconds(120)) else {
                throw DeadLetterCLIError(message: "outbox-relay did not exit within 120 s: \(child.standardError.suffix(2000))")
            }
            return Result(status: status, stdout: child.standardOutput, stderr: child.standardError)
        }
    }

    struct DeadLetterCLIError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    static func run(_ arguments: [String], fixture: OutboxFixture) async throws -> Result {
        try await spawn(arguments, fixture: fixture).wait()
    }

    static func spawn(_ arguments: [String], fixture: OutboxFixture) throws -> Running {
        Running(
            child: try ChildProcess(
                ChildProcess.relayBinary, arguments + ["--schema", fixture.schema.rawValue, "--log-level", "warning"],
                environment: ChildProcess.environment([
                    "OUTBOX_DATABASE_URL": TestServices.databaseURL, "OUTBOX_KAFKA_BROKERS": TestServices.brokers,
                ])))
    }
}
