import Foundation
import Testing
@testable import OutboxRelay

/// The catalogue, the reference table and docs/configuration.md stay in step.
@Suite struct SettingsReferenceTests {
    @Test func everySettingHasUniqueNamesKeysAndFlags() {
        let settings = RelaySettings.defaults
        #expect(Set(settings.map(\.name)).count == settings.count)
        #expect(Set(settings.map(\.fileKey)).count == settings.count)
        #expect(Set(settings.map { Setting.flag(forEnvironmentName: $0.name) }).count == settings.count)
        #expect(settings.allSatisfy { $0.fileKey == $0.fileKey.lowercased() && $0.name.hasPrefix("OUTBOX_") })
    }

    @Test func docsEmbedTheGeneratedTable() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/configuration.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        #expect(text.contains(SettingsReference.markdownTable()), "regenerate the table with `outbox-relay config reference`")
        for setting in RelaySettings.defaults {
            #expect(text.contains("`\(setting.fileKey)`") && text.contains("`\(setting.name)`"), "\(setting.name) is missing")
        }
    }

    @Test func docsExamplesAreValidConfigurations() async throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/configuration.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        for (fence, name) in [("```yaml\n", "example.yaml"), ("```json\n{", "example.json")] {
            let start = try #require(text.range(of: fence))
            let end = try #require(text.range(of: "```", range: start.upperBound..<text.endIndex))
            let body = (fence.hasSuffix("{") ? "{" : "") + String(text[start.upperBound..<end.lowerBound])
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-docs-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let path = folder.appendingPathComponent(name).path
            try body.write(toFile: path, atomically: true, encoding: .utf8)
            let effective = try await SettingsLoader.load(SettingsInput(environment: [:], configPath: path), defaultRelayID: "docs")
            #expect(effective.settings.kafkaProperties["security.protocol"] == "SASL_SSL", "\(name)")
            #expect(effective.settings.logFormat == .json, "\(name)")
        }
    }
}
