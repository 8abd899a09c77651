import ArgumentParser
import Foundation
import Logging
import OutboxRelay

struct DeadLetterListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List dead letters, oldest first.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var filterOptions: DeadLetterFilterOptions
    @Option(help: "dead, replayed, purged or all (default dead).") var status: String?
    @Option(help: "Show at most this many (default 100).") var limit: String?
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        let settings = try await global.settings()
        let logger = Logger(label: "outbox-relay.dlq")
        let filter: DeadLetterFilter
        let count: Int
        do {
            filter = try filterOptions.filter(status: status)
            count = try limit.map { text throws(DeadLetterFilterError) in try DeadLetterFilter.parseCount(text, option: "--limit") } ?? 100
        } catch {
            throw invalidUsage(error)
        }
        let (rows, more) = try await withDeadLetterStore(settings, logger: logger) { store in
            try await store.list(filter, limit: count, logger: logger)
        }
        if json {
            struct Output: Encodable { var deadLetters: [DeadLetterSummary]; var more: Bool }
            print(try DeadLetterOutput.json(Output(deadLetters: rows, more: more)))
            return
        }
        guard !rows.isEmpty else {
            print("no dead letters match (\(DeadLetterOutput.describe(filter)))")
            return
        }
        print(DeadLetterOutput.summaryTable(rows))
        if more {
            print("… more match: showing the first \(count); raise --limit or narrow the filter (`dlq stats` counts them)")
        }
    }
}
