import Foundation
import Hummingbird
import Testing

@testable import OutboxConsole
@testable import OutboxRelay

/// The console's pure parts: escaping, form decoding, the settings it refuses, the access checks.
struct ConsoleUnitTests {
    @Test func escapingTurnsEveryMarkupCharacterIntoText() {
        #expect(HTML.escape("<script>alert('x') & \"y\"</script>") == "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;")
        #expect(HTML.escape("a\u{0}b\u{1B}c\nd") == "a\u{FFFD}b\u{FFFD}c\nd")
        let element = HTML.element("a", ["href": "/x?\"><script>"], text: "<b>")
        #expect(element.markup == "<a href=\"/x?&quot;&gt;&lt;script&gt;\">&lt;b&gt;</a>")
    }

    @Test func formFieldsDecodePlusPercentAndRepeatedNames() {
        let fields = FormFields(parsing: "topic=a+b&topic=c%21&key=%E2%9C%93&empty=&=skipped&csrf=x%")
        #expect(fields.all("topic") == ["a b", "c!"])
        #expect(fields.first("key") == "✓")
        #expect(fields.nonEmpty("empty") == nil)
        #expect(fields.first("csrf") == "x")
        #expect(FormFields(parsing: fields.queryString) == fields)
    }

    @Test func theConsoleRefusesToListenBeyondLoopbackWithoutAStrongToken() throws {
        #expect(throws: Never.self) { try ConsoleSettings().validate() }
        #expect(throws: Never.self) { try ConsoleSettings(address: HTTPAddress(host: "::1", port: 9465)).validate() }
        #expect(throws: ConsoleSettingsError.tokenRequired(address: "0.0.0.0:9465")) {
            try ConsoleSettings(address: HTTPAddress(host: "0.0.0.0", port: 9465)).validate()
        }
        #expect(throws: ConsoleSettingsError.weakToken(minimum: 16)) {
            try ConsoleSettings(address: HTTPAddress(host: "0.0.0.0", port: 9465), token: "short").validate()
        }
        #expect(throws: Never.self) {
            try ConsoleSettings(address: HTTPAddress(host: "0.0.0.0", port: 9465), token: String(repeating: "k", count: 32)).validate()
        }
        #expect(ConsoleSettings.isLoopback(host: "127.0.0.2"))
        #expect(!ConsoleSettings.isLoopback(host: "127.0.0.1.example.com"))
        #expect(!ConsoleSettings.isLoopback(host: "10.0.0.1"))
        // The error names the fix and never a secret.
        let message = ConsoleSettingsError.tokenRequired(address: "0.0.0.0:9465").description
        #expect(message.contains("OUTBOX_CONSOLE_TOKEN"))
    }

    @Test func withoutATokenOnlyRequestsAddressedToLoopbackAreAnswered() {
        let access = ConsoleAccess(token: nil)
        func request(authority: String) -> Request {
            Request(head: HTTPRequest(method: .get, scheme: "http", authority: authority, path: "/"), body: RequestBody(buffer: ByteBuffer()))
        }
        #expect(access.acceptsHost(request(authority: "127.0.0.1:9465")))
        #expect(access.acceptsHost(request(authority: "localhost:9465")))
        #expect(access.acceptsHost(request(authority: "[::1]:9465")))
        #expect(!access.acceptsHost(request(authority: "attacker.example:9465")), "DNS rebinding")
        let withToken = ConsoleAccess(token: String(repeating: "t", count: 20))
        #expect(withToken.acceptsHost(request(authority: "console.internal:9465")))
        #expect(!withToken.isAuthenticated(request(authority: "console.internal:9465")))
    }

    @Test func secretsCompareInConstantTimeAndTheSessionIsNotTheToken() {
        #expect(ConsoleAccess.constantTimeEqual("abc", "abc"))
        #expect(!ConsoleAccess.constantTimeEqual("abc", "abd"))
        #expect(!ConsoleAccess.constantTimeEqual("abc", "abcd"))
        let token = String(repeating: "s", count: 24)
        let access = ConsoleAccess(token: token)
        #expect(!access.sessionCookieHeader.contains(token))
        #expect(access.csrfToken.count == 64 && access.csrfToken != access.sessionSecret)
    }

    @Test func payloadsShowAsTextPrettyJSONOrHex() {
        let json = Data("{\"b\":1,\"a\":\"<x>\"}".utf8)
        #expect(DeadLetterPages.payloadText(json, view: .json).contains("\"a\" : \"<x>\""))
        #expect(DeadLetterPages.payloadText(Data([0xff, 0x41]), view: .text).hasPrefix("(not valid UTF-8"))
        #expect(DeadLetterPages.payloadText(Data("AB".utf8), view: .hex).hasPrefix("00000000  41 42"))
        #expect(DeadLetterPages.payloadText(Data("plain".utf8), view: .json).hasPrefix("(not JSON"))
    }

    @Test func throughputIsTheRateBetweenReadingsAndRestartsAfterAReset() {
        let history = ThroughputHistory(window: 60)
        let t0 = Date(timeIntervalSince1970: 1_000)
        history.record(total: 100, at: t0)
        history.record(total: 600, at: t0.addingTimeInterval(5))
        history.record(total: 50, at: t0.addingTimeInterval(10))  // statistics reset
        history.record(total: 150, at: t0.addingTimeInterval(20))
        #expect(history.samples.map(\.perSecond) == [100, 10])
        history.record(total: 150, at: t0.addingTimeInterval(200))
        #expect(history.samples.count == 1, "samples older than the window are dropped")
    }

    /// Unheld lanes wait for a relay that claims; when every live relay has stepped back (the whole
    /// cluster unreachable), none will until a broker answers, and the page must not promise a claim.
    @Test func theUnheldLanesWarningSaysWhoWillClaimThem() {
        func relay(_ id: String, steppedBack: Bool) -> RelayRecord {
            RelayRecord(
                id: id, host: "h", pid: 1, version: "v", startedAt: Date(), heartbeatAt: Date(), heartbeatAgeSeconds: 1,
                lanesHeld: 0, alive: true, steppedBack: steppedBack, ready: false, readiness: "broker unreachable")
        }
        func page(_ relays: [RelayRecord]) -> String {
            let lanes = (0..<256).map { FleetSnapshot.Lane(lane: Int16($0), owner: nil, epoch: 0, leaseSecondsLeft: nil, state: "free") }
            let snapshot = FleetSnapshot(
                schema: "outbox", readAt: Date(), relays: relays, lanes: lanes, topics: [], oldestLanes: [], deadLetters: 0,
                rowsLeftOutbox: 0)
            return FleetPage.body(snapshot, throughput: []).markup
        }
        let waiting = page([relay("a", steppedBack: true), relay("b", steppedBack: false)])
        #expect(waiting.contains("256 lane(s) have no live lease") && waiting.contains("until a relay claims them"))
        let allBack = page([relay("a", steppedBack: true), relay("b", steppedBack: true)])
        #expect(allBack.contains("until a broker answers") && !allBack.contains("until a relay claims them"), "\(allBack)")
    }
}
