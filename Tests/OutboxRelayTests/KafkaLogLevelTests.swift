import Testing
@testable import OutboxRelay

/// librdkafka's log lines, lowered where the relay causes or reports the event itself.
@Suite struct KafkaLogLevelTests {
    @Test func connectionFailuresAndTheGaplessNoticeAreDebug() {
        #expect(KafkaClientContext.logLevel(syslog: 3, facility: "FAIL", message: "Connect to ipv4#127.0.0.1:9 failed") == .debug)
        #expect(
            KafkaClientContext.logLevel(
                syslog: 4, facility: "CONFWARN", message: "Configuration property enable.gapless.guarantee is experimental") == .debug)
        #expect(KafkaClientContext.logLevel(syslog: 4, facility: "CONFWARN", message: "Configuration property foo is deprecated") == .warning)
    }

    /// The fatal error gapless raises after the relay purged records in flight is expected; any
    /// other fatal error stays critical.
    @Test func aFatalErrorAfterTheRelaysOwnPurgeIsAWarningAnyOtherIsCritical() {
        let afterPurge = "Fatal error: Local: Gap-less ordering would not be guaranteed if proceeding: ProduceRequest for t [0] with 118 message(s) failed: Local: Purged in flight"
        #expect(KafkaClientContext.logLevel(syslog: 0, facility: "FATAL", message: afterPurge) == .warning)
        let realFatal = "Fatal error: Broker: Broker received an out of order sequence number"
        #expect(KafkaClientContext.logLevel(syslog: 0, facility: "FATAL", message: realFatal) == .critical)
        #expect(KafkaClientContext.isAfterOwnPurge(afterPurge) && !KafkaClientContext.isAfterOwnPurge(realFatal))
    }
}
