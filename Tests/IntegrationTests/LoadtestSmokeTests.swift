import Foundation
import Testing

/// A seconds-long run of `outbox-loadtest drain` (no timing asserted): the tool works end to end
/// and its ledger is clean with two relay processes.
@Suite(.serialized) struct LoadtestSmokeTests {
    @Test func drainWithTwoRelaysReportsACleanLedger() async throws {
        try await OutboxFixture.with { fixture in
            let output = NSTemporaryDirectory() + "loadtest-smoke-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: output) }
            let tool = ChildProcess.binDirectory.appendingPathComponent("outbox-loadtest").path
            let run = try ChildProcess(
                tool,
                ["drain", "--messages", "3000", "--relays", "2", "--keys", "100", "--batch-size", "250",
                 "--schema", fixture.schema.rawValue, "--output", output, "--timeout", "120"],
                environment: ChildProcess.environment([
                    "OUTBOX_DATABASE_URL": TestServices.databaseURL, "OUTBOX_KAFKA_BROKERS": TestServices.brokers,
                ]))
            let code = await run.wait(timeout: .seconds(180))
            #expect(code == 0, "stderr: \(run.standardError.suffix(3000))")
            #expect(run.standardOutput.contains("**lost 0**"))
            #expect(run.standardOutput.contains("**order violations 0**"))

            let folders = try FileManager.default.contentsOfDirectory(atPath: output)
            #expect(folders.count == 1)
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(output)/\(folders[0])/report.json"))
            let report = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            let ledger = report?["ledger"] as? [String: Any]
            #expect(ledger?["lost"] as? Int == 0)
            #expect(ledger?["unique"] as? Int == 3000)
            #expect(ledger?["orderViolations"] as? Int == 0)
            #expect((report?["relayExitCodes"] as? [Int]) == [0, 0])
        }
    }
}
