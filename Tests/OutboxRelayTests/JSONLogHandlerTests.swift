import Foundation
import Logging
import Synchronization
import Testing
@testable import OutboxRelay

@Suite struct JSONLogHandlerTests {
    final class Lines: Sendable {
        let collected = Mutex<[String]>([])
        func append(_ line: String) { collected.withLock { $0.append(line) } }
        var all: [String] { collected.withLock { $0 } }
    }

    @Test func oneParsableObjectPerLineWithMetadata() throws {
        let lines = Lines()
        var handler = JSONLogHandler(label: "outbox-relay.test") { lines.append($0) }
        handler.logLevel = .debug
        handler[metadataKey: "relay"] = "r-1"
        let logger = Logger(label: "outbox-relay.test") { _ in handler }
        logger.info("claimed lanes", metadata: ["count": "3", "lanes": .array(["1", "2"]), "nested": .dictionary(["a": "b"])])
        logger.warning("line\nbreak \"quoted\"", metadata: ["sasl.password": "S3cr3t-Hunter2-Pw"])
        logger.trace("not logged below the level")

        #expect(lines.all.count == 2)
        #expect(lines.all.allSatisfy { $0.hasSuffix("\n") && $0.dropLast().contains("\n") == false })
        let first = try #require(JSONSerialization.jsonObject(with: Data(lines.all[0].utf8)) as? [String: Any])
        #expect(first["message"] as? String == "claimed lanes")
        #expect(first["level"] as? String == "info")
        #expect(first["label"] as? String == "outbox-relay.test")
        #expect(first["source"] as? String == "OutboxRelayTests")
        #expect((first["timestamp"] as? String)?.hasSuffix("Z") == true)
        let metadata = try #require(first["metadata"] as? [String: Any])
        #expect(metadata["count"] as? String == "3")
        #expect(metadata["relay"] as? String == "r-1")
        #expect(metadata["lanes"] as? [String] == ["1", "2"])
        #expect((metadata["nested"] as? [String: String]) == ["a": "b"])

        let second = try #require(JSONSerialization.jsonObject(with: Data(lines.all[1].utf8)) as? [String: Any])
        #expect(second["message"] as? String == "line\nbreak \"quoted\"")
        #expect(!lines.all[1].contains("S3cr3t-Hunter2-Pw"))
    }
}
