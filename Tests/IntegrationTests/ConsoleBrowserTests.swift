import Foundation
import Outbox
import OutboxEnvelope
import OutboxTestSupport
import PostgresNIO
import Testing

@testable import OutboxRelay

#if canImport(Glibc)
import Glibc
#endif

/// The console in a real browser (headless Chromium driven over WebDriver): the real
/// `outbox-relay console` binary, two running relays, real dead letters with a `<script>` payload.
/// Screenshots of every page go to `$CONSOLE_SCREENSHOTS` (default: a folder in the temporary
/// directory, so a test run leaves the tree clean); the operations guide's come from
/// `CONSOLE_SCREENSHOTS=docs/screenshots scripts/test --filter ConsoleBrowserTests`.
@Suite(.serialized) struct ConsoleBrowserTests {
    static let screenshots: String = {
        guard let folder = ProcessInfo.processInfo.environment["CONSOLE_SCREENSHOTS"], !folder.isEmpty else {
            return NSTemporaryDirectory() + "outbox-console-screenshots"
        }
        return folder.hasPrefix("/") ? folder : DeployKit.root.appendingPathComponent(folder).path
    }()

    @Test func anOperatorFindsTheFleetFiltersDeadLettersAndReplaysThemThroughThePages() async throws {
        try await ConsoleTests.withRelays(["relay-a", "relay-b"]) { fixture in
            let ids = try await ConsoleTests.makeDeadLetters(fixture, count: 3)
            try await Self.insertDeadLetters(fixture, count: 12, topic: "payments", reason: "message_too_large")
            try await Self.withConsole(fixture) { base in
                let browser = try await WebDriver.start()
                defer { browser.stop() }

                // The fleet: both relays, 256 lanes coloured by owner, and a refresh in place.
                try browser.open(base + "/")
                try await browser.wait("the lane grid") { try browser.elements("ol.lanes li").count == 256 }
                let relays = try browser.text(try browser.element("main table"))
                #expect(relays.contains("relay-a") && relays.contains("relay-b"))
                let owned = try browser.run("return document.querySelectorAll('ol.lanes li[data-owner=\"relay-a\"]').length") as? Int ?? 0
                #expect(owned == 128, "relay-a's lanes in the grid: \(owned)")
                let readAt = try browser.text(try browser.element("#fleet-summary"))
                try await browser.wait("the fleet page refreshes itself", timeout: .seconds(15)) {
                    try browser.text(try browser.element("#fleet-summary")) != readAt
                }
                #expect(try browser.currentURL == base + "/", "refreshed in place, not reloaded")
                try browser.screenshot(to: Self.screenshots + "/console-fleet.png")

                // Dead letters: filter by reason with the form.
                try browser.open(base + "/dead-letters")
                try browser.click(try browser.element("select[name=reason] option[value=invalid_topic]"))
                try browser.click(try browser.element("form.filters button"))
                try await browser.wait("the filtered list") { try browser.currentURL.contains("reason=invalid_topic") }
                let links = try browser.elements("main table tbody tr")
                #expect(links.count == ids.count, "only the invalid_topic dead letters")
                let table = try browser.text(try browser.element("main table"))
                #expect(table.contains(ConsoleTests.hostileKey), "the hostile key shows as text")
                #expect(!table.contains("payments"))
                try browser.screenshot(to: Self.screenshots + "/console-dead-letters.png")

                // One dead letter: the <script> payload is text and runs nothing.
                try browser.open(base + "/dead-letters/\(ids[0])")
                let payload = try browser.text(try browser.element("#payload"))
                #expect(payload == ConsoleTests.hostile)
                #expect(try browser.title != "owned", "the payload's script did not run")
                #expect(try browser.elements("img[src=x]").isEmpty, "the key's markup was not parsed")
                try browser.screenshot(to: Self.screenshots + "/console-dead-letter.png")
                try browser.open(base + "/dead-letters/\(ids[0])?view=hex")
                #expect(try browser.text(try browser.element("#payload")).contains("3c 73 63 72 69 70 74"))

                // A POST from the page without the CSRF token: refused, nothing changes.
                let forged = try Self.postFromPage(browser, "/dead-letters/purge", "actor=mallory")
                #expect(forged == 403)

                // Replay: dry run, then confirm, with a name for the audit trail.
                try browser.open(base + "/dead-letters?reason=invalid_topic")
                let replayForm = "form[action='/dead-letters/replay']"
                try browser.type(try browser.element("\(replayForm) input[name=actor]"), "alice@ops")
                try browser.type(try browser.element("\(replayForm) input[name=to_topic]"), fixture.topic)
                try browser.click(try browser.element("\(replayForm) button"))
                try await browser.wait("the dry run") { try browser.text(try browser.element("h1")).hasPrefix("Dry run") }
                let dryRun = try browser.text(try browser.element("main"))
                #expect(dryRun.contains("3 dead letter(s) would be replayed"))
                #expect(dryRun.contains("published to topic \(fixture.topic)"))
                #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.dead_letters WHERE status = 'dead'", as: Int64.self) == 15)
                try browser.screenshot(to: Self.screenshots + "/console-replay-dry-run.png")
                try browser.click(try browser.element("form.confirm button"))
                try await browser.wait("the replay") { try browser.text(try browser.element("h1")).hasPrefix("Replayed") }
                #expect(try browser.text(try browser.element("h1")) == "Replayed 3 dead letter(s)")
                try browser.screenshot(to: Self.screenshots + "/console-replayed.png")

                try browser.open(base + "/audit")
                let audit = try browser.text(try browser.element("main table"))
                #expect(audit.contains("alice@ops"))
                #expect(audit.contains("dry run") && audit.contains("done"))
                try browser.screenshot(to: Self.screenshots + "/console-audit.png")

                try browser.open(base + "/dead-letters/stats")
                #expect(try browser.text(try browser.element("main table")).contains("payments"))
                try browser.screenshot(to: Self.screenshots + "/console-stats.png")
            }
            // On the target topic, each exactly once.
            try await ConsoleTests.waitUntil("the relays publish the replayed messages") {
                try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0
            }
            let sources = try await fixture.readTopic().compactMap { try Envelope(serializedBytes: $0.value).headers["outbox-replay-of"] }
            #expect(sources.compactMap { Int64($0) }.sorted() == ids)
        }
    }

    @Test func readOnlyOffersNoChangeAndATokenGuardsEveryPage() async throws {
        try await OutboxFixture.with { fixture in
            try await Self.insertDeadLetters(fixture, count: 10_000, topic: "orders", reason: "broker_rejected")
            let browser = try await WebDriver.start()
            defer { browser.stop() }
            try await Self.withConsole(fixture, extra: ["--read-only"]) { base in
                try browser.open(base + "/dead-letters")
                try await browser.wait("the list") { try browser.elements("main table tbody tr").count == 100 }
                #expect(try browser.elements("form[method=post]").isEmpty, "read-only: no replay or purge form")
                #expect(try browser.text(try browser.element("header")).contains("read-only"))
                let refused = try Self.postFromPage(browser, "/dead-letters/purge", "actor=ops")
                #expect(refused == 403)
                // Load times with 10,000 dead letters (observed, not asserted).
                var timings: [String] = []
                for path in ["/dead-letters", "/dead-letters/stats", "/"] {
                    try browser.open(base + path)
                    let ms = try browser.run("return Math.round(performance.getEntriesByType('navigation')[0].duration)") as? Int ?? -1
                    timings.append("\(path) \(ms) ms")
                }
                Measurements.record("console-load", "10,000 dead letters, page load (navigation duration, headless Chromium): \(timings.joined(separator: ", "))")
                try browser.open(base + "/dead-letters")
                try browser.screenshot(to: Self.screenshots + "/console-read-only.png")
            }
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.dlq_audit", as: Int64.self) == 0)

            let token = "browser-test-token-\(UUID().uuidString)"
            try await Self.withConsole(fixture, environment: ["OUTBOX_CONSOLE_TOKEN": token]) { base in
                try browser.open(base + "/dead-letters")
                try await browser.wait("the login page") { try browser.currentURL.hasSuffix("/login") }
                #expect(try browser.elements("main table").isEmpty, "nothing shown before signing in")
                // A POST without the token changes nothing.
                _ = try Self.postFromPage(browser, "/dead-letters/purge", "actor=mallory&status=all")
                try browser.type(try browser.element("input[name=token]"), "wrong-token")
                try browser.click(try browser.element("main button"))
                try await browser.wait("the refusal") { try browser.text(try browser.element("main")).contains("not the console's token") }
                try browser.type(try browser.element("input[name=token]"), token)
                try browser.click(try browser.element("main button"))
                try await browser.wait("the fleet page after signing in") { try browser.elements("ol.lanes li").count == 256 }
                try browser.open(base + "/dead-letters")
                #expect(try browser.elements("main table tbody tr").count == 100)
                #expect(!(try browser.run("return document.documentElement.outerHTML") as? String ?? "").contains(token), "the token is never in a page")
                try browser.open(base + "/login")
                try browser.screenshot(to: Self.screenshots + "/console-login.png")
            }
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.dead_letters WHERE status = 'purged'", as: Int64.self) == 0)
        }
    }

    /// Usable with the keyboard: from the skip link to a replayed dead letter, every step by Tab,
    /// arrows, typing and Enter (no clicks), and the focus visible at every stop.
    @Test func theReplayFlowWorksFromTheKeyboardAlone() async throws {
        try await OutboxFixture.with { fixture in
            try await Self.insertDeadLetters(fixture, count: 4, topic: "orders", reason: "broker_rejected")
            try await Self.insertDeadLetters(fixture, count: 2, topic: "orders", reason: "message_too_large")
            let browser = try await WebDriver.start()
            defer { browser.stop() }
            try await Self.withConsole(fixture) { base in
                var invisible: [String] = []
                try browser.open(base + "/dead-letters")
                try browser.press(WebDriver.tabKey)
                #expect(try browser.focused("a.skip"), "the first tab stop skips the navigation")
                try browser.press(WebDriver.enterKey)
                #expect(try browser.focused("main"), "the skip link moves the focus to the content")

                // Filter by reason: Tab to the select, arrow down to the reason, Tab to Filter, Enter.
                invisible += try browser.tab(to: "select[name=reason]")
                for _ in 0..<12 where try browser.run("return document.activeElement.value") as? String != "broker_rejected" {
                    try browser.press(WebDriver.arrowDownKey)
                }
                invisible += try browser.tab(to: "form.filters button")
                try browser.press(WebDriver.enterKey)
                try await browser.wait("the filtered list") { try browser.currentURL.contains("reason=broker_rejected") }
                #expect(try browser.elements("main table tbody tr").count == 4)

                // Open the first dead letter from the table.
                invisible += try browser.tab(to: "main table tbody a")
                try browser.press(WebDriver.enterKey)
                try await browser.wait("the detail page") { try browser.text(try browser.element("h1")).hasPrefix("Dead letter") }
                try browser.open(base + "/dead-letters?reason=broker_rejected")

                // Replay: type the actor, Enter submits the dry run; Tab to Confirm, Enter.
                invisible += try browser.tab(to: "form[action='/dead-letters/replay'] input[name=actor]")
                try browser.press("kb@ops")
                try browser.press(WebDriver.enterKey)
                try await browser.wait("the dry run") { try browser.text(try browser.element("h1")).hasPrefix("Dry run") }
                #expect(try browser.text(try browser.element("main")).contains("4 dead letter(s) would be replayed"))
                invisible += try browser.tab(to: "form.confirm button")
                try browser.press(WebDriver.enterKey)
                try await browser.wait("the replay") { try browser.text(try browser.element("h1")).hasPrefix("Replayed") }
                #expect(try browser.text(try browser.element("h1")) == "Replayed 4 dead letter(s)")
                #expect(invisible.isEmpty, "focus not visible at: \(invisible)")
            }
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 4, "back in the outbox")
            #expect(try await fixture.scalar("SELECT count(*) FROM {schema}.dlq_audit WHERE actor = 'kb@ops' AND NOT dry_run", as: Int64.self) == 1)
        }
    }

    // MARK: Harness

    /// A form POST sent by script from the current page (same origin, its cookies, no CSRF
    /// token): what a forged or careless request looks like. Returns the final HTTP status.
    static func postFromPage(_ browser: WebDriver, _ path: String, _ body: String) throws -> Int? {
        try browser.run(
            """
            var x = new XMLHttpRequest(); x.open('POST', '\(path)', false);
            x.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded'); x.send('\(body)');
            return x.status;
            """) as? Int
    }

    /// Runs the real `outbox-relay console` against the fixture's schema on a free loopback port.
    static func withConsole(
        _ fixture: OutboxFixture, extra: [String] = [], environment: [String: String] = [:], _ body: (String) async throws -> Void
    ) async throws {
        let port = try HTTPGet.freePort()
        var settings = [
            "OUTBOX_DATABASE_URL": TestServices.databaseURL, "OUTBOX_SCHEMA": fixture.schema.rawValue,
            "OUTBOX_CONSOLE_ADDRESS": "127.0.0.1:\(port)", "OUTBOX_CONSOLE_REFRESH": "2s", "OUTBOX_LEASE_TTL": "6s",
            "OUTBOX_RENEW_INTERVAL": "2s",
        ]
        settings.merge(environment) { $1 }
        let log = NSTemporaryDirectory() + "console-\(port).log"
        let console = try ChildProcess(ChildProcess.relayBinary, ["console"] + extra, environment: ChildProcess.environment(settings), log: log)
        do {
            try await ready(port: port, log: log)
            try await body("http://127.0.0.1:\(port)")
        } catch {
            console.kill()
            throw error
        }
        console.signal(SIGTERM)
        #expect(await console.wait(timeout: .seconds(15)) == 0, "the console stops on SIGTERM")
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        if let token = environment["OUTBOX_CONSOLE_TOKEN"] { #expect(!output.contains(token), "the token is never logged") }
    }

    static func ready(port: Int, log: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while (try? HTTPGet.get(port: port, path: "/login"))?.status != 200 {
            guard ContinuousClock.now < deadline else {
                throw OutboxFixture.FixtureError(message: "the console did not answer: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Dead letters written as the relay's dead-letter statement writes them (for counts no relay
    /// needs to produce one by one).
    static func insertDeadLetters(_ fixture: OutboxFixture, count: Int, topic: String, reason: String) async throws {
        _ = try await fixture.scalar(
            """
            WITH ids AS (SELECT nextval(pg_get_serial_sequence('{schema}.messages', 'id')) AS id FROM generate_series(1, \(count))),
            i AS (
                INSERT INTO {schema}.dead_letters (id, topic, key, lane, payload, headers, created_at, attempts, reason, error, relay)
                SELECT id, '\(topic)', convert_to('key-' || id, 'UTF8'), (id % 256)::int2, convert_to('{"order": ' || id || '}', 'UTF8'),
                       '{}'::jsonb, now(), 1, '\(reason)', 'inserted by the test', 'test'
                FROM ids RETURNING 1)
            SELECT count(*) FROM i
            """, as: Int64.self)
    }
}
