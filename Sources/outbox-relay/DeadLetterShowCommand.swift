import ArgumentParser
import Foundation
import Logging
import OutboxRelay

struct DeadLetterShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show everything about one dead letter, with a printable preview of its payload.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The dead-letter id (its original outbox id, as `dlq list` shows).") var id: String
    @Flag(help: "Write only the payload bytes to stdout (e.g. `> payload.bin`).") var raw = false
    @Flag(help: "Print JSON for scripts (the payload base64-encoded).") var json = false

    func run() async throws {
        let settings = try await global.settings()
        let logger = Logger(label: "outbox-relay.dlq")
        guard let deadLetterID = Int64(id), deadLetterID > 0 else {
            throw invalidUsage(DeadLetterFilterError(
                option: "ID", problem: "\(String(reflecting: id)) is not a dead-letter id (a positive whole number, as `dlq list` shows)"))
        }
        let letter = try await withDeadLetterStore(settings, logger: logger) { store in
            try await store.show(id: deadLetterID, logger: logger)
        }
        if raw {
            FileHandle.standardOutput.write(letter.payload)
            return
        }
        if json {
            print(try DeadLetterOutput.json(letter))
            return
        }
        let s = letter.summary
        var fields: [(String, String)] = [
            ("status", s.status.rawValue),
            ("topic", s.topic),
            ("key", s.keyDisplay),
            ("reason", s.reason),
            ("error", DeadLetterOutput.printable(s.error, keepNewlines: false)),
            ("attempts", "\(s.attempts)"),
            ("relay", letter.relay ?? "-"),
            ("lane", "\(letter.lane)"),
            ("created at", DeadLetterOutput.time(s.createdAt)),
            ("dead at", DeadLetterOutput.time(s.deadAt)),
        ]
        if let replayedAt = s.replayedAt {
            let state = letter.replayState.map { " (\($0))" } ?? ""
            fields.append(("replayed at", "\(DeadLetterOutput.time(replayedAt)) as outbox message \(s.replayID.map(String.init) ?? "?")\(state)"))
        }
        if let purgedAt = letter.purgedAt { fields.append(("purged at", DeadLetterOutput.time(purgedAt) + " (payload dropped)")) }
        if let action = letter.lastAction {
            fields.append(("last action", "\(action.action) by \(action.actor) at \(DeadLetterOutput.time(action.at)) (audit \(action.id), filter \(action.filterJSON))"))
        }
        if let replayOf = letter.replayOf { fields.append(("replay of", "dead letter \(replayOf) (it died again)")) }
        fields += [
            ("type", letter.type ?? "-"),
            ("content type", letter.contentType ?? "-"),
            ("headers", letter.headersJSON),
            ("payload", "\(letter.payload.count) bytes"),
        ]
        print("dead letter \(s.id)")
        let width = fields.map(\.0.count).max() ?? 0
        for (name, value) in fields {
            print("  \(name.padding(toLength: width, withPad: " ", startingAt: 0))  \(value)")
        }
        let preview = DeadLetterOutput.payloadPreview(letter.payload)
        if !preview.isEmpty {
            print(preview.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n"))
        }
    }
}
