import OutboxRelay
import Testing

@Suite("Librdkafka version check")
struct LibrdkafkaVersionTests {
    @Test("Debian's 2.0.2 and 2.1.1 are refused; 2.2.0 and later are accepted")
    func supported() {
        #expect(!Librdkafka.isSupported(version: 0x0200_02ff))
        #expect(!Librdkafka.isSupported(version: 0x0201_01ff))
        #expect(Librdkafka.isSupported(version: 0x0202_00ff))
        #expect(Librdkafka.isSupported(version: 0x0210_00ff))
        #expect(Librdkafka.isSupported(version: 0x0300_00ff))
    }

    @Test("versions are described as major.minor.revision")
    func describe() {
        #expect(Librdkafka.describe(version: 0x0200_02ff) == "2.0.2")
        #expect(Librdkafka.describe(version: 0x0210_00ff) == "2.16.0")
    }

    @Test("the refusal names the fix")
    func refusalMessage() {
        #expect {
            try Librdkafka.requireSupported(version: 0x0200_02ff)
        } throws: { error in
            let text = "\(error)"
            return error as? KafkaClientError == .unsupportedLibrdkafkaVersion(found: "2.0.2", required: "2.2.0")
                && text.contains("scripts/bootstrap") && text.contains("LD_LIBRARY_PATH")
        }
        #expect(throws: Never.self) { try Librdkafka.requireSupported(version: 0x0210_00ff) }
    }

    @Test("the loaded library reports a version string")
    func loaded() {
        #expect(!Librdkafka.versionString.isEmpty)
        #expect(Librdkafka.describe(version: Librdkafka.version) == Librdkafka.versionString
            || Librdkafka.versionString.hasPrefix(Librdkafka.describe(version: Librdkafka.version)))
    }
}
