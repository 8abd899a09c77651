import Foundation
import Testing

@testable import OutboxRelay

/// How `status` and the console put a relay's row in words: its silence first, then stepping
/// back, then what it said of itself.
@Suite struct RelayRecordTests {
    func record(alive: Bool = true, steppedBack: Bool = false, ready: Bool? = true, readiness: String? = "ok: holds 128 lanes") -> RelayRecord {
        RelayRecord(
            id: "a", host: "h", pid: 1, version: "v", startedAt: Date(), heartbeatAt: Date(), heartbeatAgeSeconds: alive ? 1 : 42.7,
            lanesHeld: 128, alive: alive, steppedBack: steppedBack, ready: ready, readiness: readiness)
    }

    @Test func theStateSaysWhatTheRelaySaidUnlessItsSilenceSaysMore() {
        #expect(record().state == "ready: ok: holds 128 lanes")
        #expect(!record().needsAttention)
        #expect(record(ready: false, readiness: "holds no lanes although 3 are free").state == "not ready: holds no lanes although 3 are free")
        #expect(record(ready: false).needsAttention)
        let back = record(steppedBack: true, ready: false, readiness: "broker unreachable since 40s")
        #expect(back.state == "stepped back, its lanes are with the others: broker unreachable since 40s")
        #expect(back.needsAttention)
        // A silent relay's last word is stale: the silence is the news.
        let gone = record(alive: false, ready: true)
        #expect(gone.state.hasPrefix("gone: no heartbeat for 42 s"))
        #expect(gone.needsAttention)
        #expect(record(ready: nil, readiness: nil).state == "publishing 128 lanes")
    }

    /// The console and `status --json` carry the words, not only the fields.
    @Test func theStateIsInTheJSON() throws {
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(record(ready: false, readiness: "x"))) as? [String: Any]
        #expect(json?["state"] as? String == "not ready: x")
        #expect(json?["steppedBack"] as? Bool == false)
    }
}
