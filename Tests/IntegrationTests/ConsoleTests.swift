import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Outbox
import OutboxEnvelope
import OutboxTestSupport
import PostgresNIO
import Testing

@testable import OutboxConsole
@testable import OutboxRelay

/// The console's JSON API and pages against real PostgreSQL, two running relays and dead letters
/// those relays made: what the pages say matches SQL, what the database holds renders as text,
/// and replay and purge happen only as the issue asks (a dry run, then a confirm of that same
/// selection, with the CSRF token, never when read-only).
@Suite(.serialized) struct ConsoleTests {
    static let hostile = "<script>document.title='owned'</script>"
    static let hostileKey = "<img src=x onerror=alert(1)>"

    // MARK: Fleet

    @Test func theFleetAPIAndPageMatchTheLanesAndOutboxTablesWithTwoRelays() async throws {
        try await Self.withRelays(["console-a", "console-b"]) { fixture in
            // Rows held behind a retry stay pending whatever the relays do: counts to compare.
            try await Self.holdRows(fixture, topic: "held-topic", count: 7)
            let server = Self.server(fixture)
            try await Self.test(server) { client in
                let (status, json) = try await Self.getJSON(client, "/api/fleet")
                #expect(status == .ok)
                let fleet = try #require(json["fleet"] as? [String: Any])
                let relays = try #require(fleet["relays"] as? [[String: Any]])
                #expect(Set(relays.compactMap { $0["id"] as? String }) == ["console-a", "console-b"])
                #expect(relays.allSatisfy { ($0["alive"] as? Bool) == true })
                // Ready or why not: what each relay's heartbeat said, as in `relays`.
                let readyBySQL = try await fixture.scalar("SELECT count(*) FROM {schema}.relays WHERE ready", as: Int64.self)
                #expect(readyBySQL == 2)
                #expect(relays.allSatisfy { ($0["ready"] as? Bool) == true && ($0["state"] as? String)?.hasPrefix("ready: ok") == true }, "\(relays)")
                let lanes = try #require(fleet["lanes"] as? [[String: Any]])
                var owners: [Int: String] = [:]
                for lane in lanes { if let owner = lane["owner"] as? String { owners[lane["lane"] as! Int] = owner } }
                let sqlOwners = try await Self.laneOwners(fixture)
                #expect(lanes.count == 256)
                #expect(owners == sqlOwners)
                let heldBySQL = try await fixture.scalar("SELECT count(*) FROM {schema}.lanes WHERE owner = 'console-a' AND lease_expires_at > now()", as: Int64.self)
                #expect(relays.first { $0["id"] as? String == "console-a" }?["lanesHeld"] as? Int == Int(heldBySQL))
                let topics = try #require(fleet["topics"] as? [[String: Any]])
                let held = try #require(topics.first { $0["topic"] as? String == "held-topic" })
                #expect(held["pending"] as? Int == 7)
                #expect(held["retrying"] as? Int == 7)
                #expect(fleet["deadLetters"] as? Int == 0)
                // The lanes waiting longest are the held rows' lanes, with their attempts.
                let oldest = try #require(fleet["oldestLanes"] as? [[String: Any]])
                let heldLanes = try await fixture.scalar("SELECT array_agg(DISTINCT lane::int4) FROM {schema}.messages", as: [Int32].self)
                #expect(Set(oldest.compactMap { ($0["lane"] as? Int).map(Int32.init) }) == Set(heldLanes), "\(oldest)")
                #expect(oldest.allSatisfy { $0["maxAttempts"] as? Int == 1 })
                #expect(oldest.map { $0["pending"] as? Int ?? 0 }.reduce(0, +) == 7)

                let page = try await Self.get(client, "/")
                #expect(page.status == .ok)
                #expect(page.body.contains("console-a") && page.body.contains("console-b"))
                #expect(page.body.components(separatedBy: "<span class=\"ok\">ready: ok").count - 1 == 2, "both relays shown ready")
                #expect(page.body.contains("Lanes waiting longest"))
                #expect(page.body.components(separatedBy: "data-lane=").count - 1 == 256)
                for (lane, owner) in sqlOwners.prefix(5) {
                    #expect(page.body.contains("data-lane=\"\(lane)\" data-owner=\"\(owner)\""))
                }
                #expect(page.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
                #expect(page.body.contains("data-refresh=\"5000\""), "the fleet page refreshes itself")
                let fragment = try await Self.get(client, "/fleet/fragment")
                #expect(fragment.status == .ok && fragment.body.contains("data-lane=") && !fragment.body.contains("<html"))
            }
        }
    }

    // MARK: Dead letters

    @Test func deadLettersAreFilteredPagedAndShownAsTextNeverAsMarkup() async throws {
        try await Self.withRelays(["console-a", "console-b"]) { fixture in
            let ids = try await Self.makeDeadLetters(fixture, count: 5)
            let server = Self.server(fixture)
            try await Self.test(server) { client in
                // Paged through the API: 2 + 2 + 1.
                var seen: [Int64] = []
                var after: Int64 = 0
                for _ in 0..<4 {
                    let (status, json) = try await Self.getJSON(client, "/api/dead-letters?reason=invalid_topic&limit=2&after=\(after)")
                    #expect(status == .ok)
                    let rows = try #require(json["rows"] as? [[String: Any]])
                    seen += rows.compactMap { ($0["id"] as? Int).map(Int64.init) }
                    guard json["more"] as? Bool == true, let next = json["next"] as? Int else { break }
                    after = Int64(next)
                }
                #expect(seen == ids)
                let none = try await Self.getJSON(client, "/api/dead-letters?reason=message_too_large")
                #expect((none.json["rows"] as? [Any])?.isEmpty == true)
                let bad = try await Self.getJSON(client, "/api/dead-letters?reason=no_such_reason")
                #expect(bad.status == .badRequest)
                #expect((bad.json["error"] as? String)?.contains("unknown reason") == true)

                let stats = try await Self.getJSON(client, "/api/dead-letters/stats")
                let groups = try #require(stats.json["groups"] as? [[String: Any]])
                let sqlCount = try await fixture.scalar("SELECT count(*) FROM {schema}.dead_letters WHERE status = 'dead'", as: Int64.self)
                #expect(groups.reduce(0) { $0 + ($1["count"] as? Int ?? 0) } == Int(sqlCount))

                // The list page: filtered, the hostile key as text.
                let list = try await Self.get(client, "/dead-letters?topic=bad+topic%21&reason=invalid_topic")
                #expect(list.status == .ok)
                #expect(list.body.contains("/dead-letters/\(ids[0])"))
                #expect(list.body.contains(HTML.escape(Self.hostileKey)))
                #expect(!list.body.contains(Self.hostileKey))
                // The detail page: the payload as text, pretty JSON and hex, never as markup.
                for view in ["text", "json", "hex"] {
                    let detail = try await Self.get(client, "/dead-letters/\(ids[0])?view=\(view)")
                    #expect(detail.status == .ok)
                    #expect(!detail.body.contains("<script>document"), "view \(view) must not carry the payload as markup")
                    #expect(!detail.body.contains("<img src=x"))
                }
                let text = try await Self.get(client, "/dead-letters/\(ids[0])?view=text")
                #expect(text.body.contains("&lt;script&gt;document.title=&#39;owned&#39;&lt;/script&gt;"))
                let hex = try await Self.get(client, "/dead-letters/\(ids[0])?view=hex")
                #expect(hex.body.contains("3c 73 63 72 69 70 74"), "hex of <script")
                let missing = try await Self.get(client, "/dead-letters/999999999")
                #expect(missing.status == .notFound)
            }
        }
    }

    // MARK: Replay and purge

    @Test func replayNeedsTheCSRFTokenADryRunAndAConfirmOfThatSameSelection() async throws {
        try await Self.withRelays(["console-a", "console-b"]) { fixture in
            let ids = try await Self.makeDeadLetters(fixture, count: 3)
            let server = Self.server(fixture)
            let csrf = server.access.csrfToken
            let selection = "topic=bad+topic%21&reason=invalid_topic&to_topic=\(fixture.topic)&actor=alice%40ops"
            try await Self.test(server) { client in
                // No CSRF token: refused, nothing recorded.
                let forged = try await Self.post(client, "/dead-letters/replay", selection)
                #expect(forged.status == .forbidden)
                #expect(try await Self.auditCount(fixture) == 0)
                // Without an actor: refused.
                let anonymous = try await Self.post(client, "/dead-letters/replay", "topic=bad+topic%21&csrf=\(csrf)")
                #expect(anonymous.status == .badRequest)
                // The dry run: counts and lists, changes nothing, is audited.
                let dryRun = try await Self.post(client, "/dead-letters/replay", selection + "&csrf=\(csrf)")
                #expect(dryRun.status == .ok)
                #expect(dryRun.body.contains("3 dead letter(s) would be replayed"))
                #expect(dryRun.body.contains("published to topic \(fixture.topic)"))
                let auditID = try await fixture.scalar("SELECT max(id) FROM {schema}.dlq_audit WHERE dry_run", as: Int64.self)
                #expect(dryRun.body.contains("name=\"confirm\" value=\"\(auditID)\""))
                #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.dead_letters WHERE status = 'dead'", as: Int64.self) == 3)
                // A confirm of a different selection (another target topic) is refused.
                let other = try await Self.post(
                    client, "/dead-letters/replay",
                    "topic=bad+topic%21&reason=invalid_topic&to_topic=elsewhere&actor=alice%40ops&confirm=\(auditID)&csrf=\(csrf)")
                #expect(other.status == .conflict)
                #expect(other.body.contains("its selection differs"))
                // Nor by someone else.
                let mallory = try await Self.post(
                    client, "/dead-letters/replay",
                    "topic=bad+topic%21&reason=invalid_topic&to_topic=\(fixture.topic)&actor=mallory&confirm=\(auditID)&csrf=\(csrf)")
                #expect(mallory.status == .conflict)
                #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.dead_letters WHERE status = 'dead'", as: Int64.self) == 3)
                // The confirm: replayed.
                let confirmed = try await Self.post(client, "/dead-letters/replay", selection + "&confirm=\(auditID)&csrf=\(csrf)")
                #expect(confirmed.status == .ok)
                #expect(confirmed.body.contains("Replayed 3 dead letter(s)"))
                let audit = try await Self.get(client, "/audit")
                #expect(audit.body.contains("alice@ops"))
                let (_, entries) = try await Self.getJSONArray(client, "/api/audit")
                #expect(entries.contains { $0["actor"] as? String == "alice@ops" && $0["dryRun"] as? Bool == false && $0["count"] as? Int == 3 })
            }
            // The running relays publish them to the target topic, each exactly once.
            try await Self.waitUntil("the replayed messages are published") {
                try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0
            }
            let records = try await fixture.readTopic()
            let envelopes = try records.map { try Envelope(serializedBytes: $0.value) }
            let sources = envelopes.compactMap { $0.headers["outbox-replay-of"] }.compactMap { Int64($0) }
            #expect(sources.sorted() == ids, "each dead letter is on the target topic exactly once")
        }
    }

    @Test func purgeTakesTheSameTwoStepsAndReadOnlyOffersAndAllowsNoChange() async throws {
        try await Self.withRelays(["console-a"]) { fixture in
            _ = try await Self.makeDeadLetters(fixture, count: 2)
            let readOnly = Self.server(fixture) { $0.readOnly = true }
            try await Self.test(readOnly) { client in
                let list = try await Self.get(client, "/dead-letters")
                #expect(list.status == .ok)
                #expect(!list.body.contains("method=\"post\""), "a read-only console offers no change")
                #expect(list.body.contains("read-only"))
                let refused = try await Self.post(
                    client, "/dead-letters/purge", "actor=ops&csrf=\(readOnly.access.csrfToken)")
                #expect(refused.status == .forbidden)
                let api = try await Self.post(
                    client, "/api/dead-letters/purge", "{\"actor\":\"ops\"}", type: "application/json",
                    extra: [.init("X-CSRF-Token")!: readOnly.access.csrfToken])
                #expect(api.status == .forbidden)
            }
            #expect(try await Self.auditCount(fixture) == 0)
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.dead_letters WHERE status = 'dead'", as: Int64.self) == 2)

            // The JSON API: a dry run, then its confirm.
            let server = Self.server(fixture)
            try await Self.test(server) { client in
                let headers: HTTPFields = [.init("X-CSRF-Token")!: server.access.csrfToken]
                let dry = try await Self.post(client, "/api/dead-letters/purge", "{\"actor\":\"ops\",\"reason\":[\"invalid_topic\"]}", type: "application/json", extra: headers)
                #expect(dry.status == .ok)
                let dryJSON = try #require(try JSONSerialization.jsonObject(with: Data(dry.body.utf8)) as? [String: Any])
                #expect(dryJSON["dryRun"] as? Bool == true && dryJSON["count"] as? Int == 2)
                let auditID = try #require(dryJSON["auditID"] as? Int)
                let done = try await Self.post(
                    client, "/api/dead-letters/purge", "{\"actor\":\"ops\",\"reason\":[\"invalid_topic\"],\"confirm\":\(auditID)}", type: "application/json",
                    extra: headers)
                #expect(done.status == .ok)
                #expect(done.body.contains("\"count\":2"))
            }
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.dead_letters WHERE status = 'purged'", as: Int64.self) == 2)
        }
    }

    // MARK: Token

    @Test func withATokenEveryRequestNeedsItOrTheSessionAndTheTokenIsNeverInAPage() async throws {
        try await OutboxFixture.with { fixture in
            let token = "test-console-token-0123456789abcdef"
            let server = Self.server(fixture) { $0.token = token }
            try await Self.test(server) { client in
                let page = try await Self.get(client, "/")
                #expect(page.status == .seeOther)
                #expect(page.headers[.location] == "/login")
                #expect(try await Self.get(client, "/api/fleet").status == .unauthorized)
                let bearer = try await Self.get(client, "/api/fleet", headers: [.authorization: "Bearer \(token)"])
                #expect(bearer.status == .ok)
                #expect(!bearer.body.contains(token))
                let wrong = try await Self.post(client, "/login", "token=not-the-token")
                #expect(wrong.status == .unauthorized)
                #expect(wrong.headers[.setCookie] == nil)
                let login = try await Self.post(client, "/login", "token=\(token)")
                #expect(login.status == .seeOther)
                let cookie = try #require(login.headers[.setCookie])
                #expect(!cookie.contains(token), "the cookie holds a session secret, not the token")
                #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
                let session = String(cookie.split(separator: ";")[0])
                let signedIn = try await Self.get(client, "/", headers: [.cookie: session])
                #expect(signedIn.status == .ok)
                #expect(!signedIn.body.contains(token))
                // A POST with the session but without the CSRF token changes nothing.
                let forged = try await Self.post(client, "/dead-letters/purge", "actor=x", extra: [.cookie: session])
                #expect(forged.status == .forbidden)
            }
        }
    }

    // MARK: Harness

    struct Page {
        var status: HTTPResponse.Status
        var headers: HTTPFields
        var body: String
    }

    static func server(_ fixture: OutboxFixture, _ adjust: (inout ConsoleSettings) -> Void = { _ in }) -> ConsoleServer {
        var settings = ConsoleSettings(leaseTTL: .seconds(6))
        adjust(&settings)
        return ConsoleServer(client: fixture.client, schema: fixture.schema, settings: settings, logger: fixture.logger)
    }

    static func test(_ server: ConsoleServer, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let application = Application(router: server.makeRouter(), logger: Logger(label: "console-test"))
        try await application.test(.router) { client in try await body(client) }
    }

    static func get(_ client: any TestClientProtocol, _ uri: String, headers: HTTPFields = [:]) async throws -> Page {
        try await client.execute(uri: uri, method: .get, headers: headers) { Page(status: $0.status, headers: $0.headers, body: String(buffer: $0.body)) }
    }

    static func post(
        _ client: any TestClientProtocol, _ uri: String, _ body: String, type: String = "application/x-www-form-urlencoded", extra: HTTPFields = [:]
    ) async throws -> Page {
        var headers: HTTPFields = [.contentType: type]
        headers.append(contentsOf: extra)
        return try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body)) {
            Page(status: $0.status, headers: $0.headers, body: String(buffer: $0.body))
        }
    }

    static func getJSON(_ client: any TestClientProtocol, _ uri: String) async throws -> (status: HTTPResponse.Status, json: [String: Any]) {
        let page = try await get(client, uri)
        return (page.status, try JSONSerialization.jsonObject(with: Data(page.body.utf8)) as? [String: Any] ?? [:])
    }

    static func getJSONArray(_ client: any TestClientProtocol, _ uri: String) async throws -> (status: HTTPResponse.Status, json: [[String: Any]]) {
        let page = try await get(client, uri)
        return (page.status, try JSONSerialization.jsonObject(with: Data(page.body.utf8)) as? [[String: Any]] ?? [])
    }

    /// Runs in-process relays with these ids (not stopping when drained) around `body`, once each
    /// holds lanes and all 256 are held.
    static func withRelays(_ ids: [String], _ body: @escaping @Sendable (OutboxFixture) async throws -> Void) async throws {
        try await OutboxFixture.with { fixture in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for id in ids {
                    let relay = RelayService(
                        configuration: fixture.relayConfiguration {
                            $0.relayID = id
                            $0.stopWhenDrained = false
                        }, client: fixture.client,
                        kafka: KafkaProducerConfiguration(bootstrapServers: TestServices.brokers, messageTimeout: .seconds(10)),
                        identity: RelayIdentity(host: "test", pid: ProcessInfo.processInfo.processIdentifier, version: "test"),
                        logger: fixture.logger)
                    group.addTask { try await relay.run() }
                }
                // Stopped on every way out: a relay task never ends by itself.
                defer { group.cancelAll() }
                // Balanced (each relay its even share), so owners no longer move during the test.
                try await waitUntil("the relays hold all 256 lanes, an even share each", timeout: .seconds(60)) {
                    let owners = try await laneOwners(fixture)
                    let shares = Dictionary(grouping: owners.values, by: { $0 }).mapValues(\.count)
                    return owners.count == 256 && Set(shares.keys) == Set(ids) && shares.values.allSatisfy { $0 == 256 / ids.count }
                }
                try await body(fixture)
            }
        }
    }

    static func laneOwners(_ fixture: OutboxFixture) async throws -> [Int: String] {
        let rows = try await fixture.client.query(
            PostgresQuery(unsafeSQL: "SELECT lane, owner FROM \(fixture.schema.rawValue).lanes WHERE owner IS NOT NULL AND lease_expires_at > now()"),
            logger: fixture.logger)
        var owners: [Int: String] = [:]
        for try await (lane, owner) in rows.decode((Int16, String).self) { owners[Int(lane)] = owner }
        return owners
    }

    static func holdRows(_ fixture: OutboxFixture, topic: String, count: Int) async throws {
        _ = try await fixture.scalar(
            """
            WITH i AS (
                INSERT INTO {schema}.messages (topic, key, payload, attempts, available_at)
                SELECT '\(topic)', convert_to('held-' || g, 'UTF8'), convert_to('held', 'UTF8'), 1, now() + interval '1 hour'
                FROM generate_series(1, \(count)) g RETURNING 1)
            SELECT count(*) FROM i
            """, as: Int64.self)
    }

    /// Real dead letters: messages to an invalid topic, which the running relays dead-letter, with a
    /// hostile key and payload. Returns their ids, ascending.
    static func makeDeadLetters(_ fixture: OutboxFixture, count: Int) async throws -> [Int64] {
        let ids = try await fixture.enqueue(
            (0..<count).map { _ in OutboxMessage(topic: "bad topic!", key: hostileKey, payload: Array(hostile.utf8)) })
        try await waitUntil("the relays dead-letter \(count) messages") {
            try await fixture.scalar("SELECT count(*) FROM {schema}.dead_letters WHERE status = 'dead'", as: Int64.self) == count
        }
        return ids.sorted()
    }

    static func auditCount(_ fixture: OutboxFixture) async throws -> Int64 {
        try await fixture.scalar("SELECT count(*) FROM {schema}.dlq_audit", as: Int64.self)
    }

    static func waitUntil(_ what: String, timeout: Duration = .seconds(60), _ condition: @Sendable () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw OutboxFixture.FixtureError(message: "timed out waiting until \(what)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
