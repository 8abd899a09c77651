import ArgumentParser
import Foundation

/// `ceiling`: only the machine's two limits, the database's and the broker's, for the relay's work.
struct CeilingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ceiling",
        abstract: "Measure the database ceiling (the relay's read + fenced delete SQL, no broker) and the produce ceiling (the relay's producer and envelopes, no database).")

    @Option(help: "Messages per probe.") var messages = 200_000
    @Option(name: .customLong("payload-bytes"), help: "Payload size.") var payloadBytes = 256
    @Option(help: "Distinct keys (round robin).") var keys = 1000
    @Option(name: .customLong("batch-size"), help: "Batch size, as the relay's.") var batchSize = 1000
    @Option(name: .customLong("in-flight"), help: "Batches in flight for the streaming produce probe.") var inFlight = 8
    @Option(help: "Schema for the database probe (migrated if needed; must hold no pending messages and run no relay).")
    var schema = "loadtest"
    @Option(help: "Folder for results.") var output = "loadtest-results"

    func validate() throws {
        guard messages >= 1, keys >= 1, payloadBytes >= 0, (1...10_000).contains(batchSize), (1...64).contains(inFlight) else {
            throw ValidationError("--messages and --keys must be positive, --payload-bytes ≥ 0, --batch-size 1-10000, --in-flight 1-64")
        }
    }

    func run() async throws {
        let context = try LoadtestContext.make(mode: "ceiling", schema: schema, output: output)
        let started = Date()
        let figures = try await context.withDatabase { client in
            try await CeilingRunner(
                context: context, client: client, messages: messages, keys: keys, payloadBytes: payloadBytes,
                batchSize: batchSize, inFlight: inFlight
            ).measure()
        }
        let report = RunReport(
            mode: "ceiling", command: CommandLine.arguments.joined(separator: " "), machine: LoadtestContext.machine(),
            startedAt: started,
            parameters: .init(
                messages: messages, relays: 0, payloadBytes: payloadBytes, keys: keys, batchSize: batchSize,
                schema: schema, topic: "loadtest-ceiling-*-\(context.stamp)"),
            ceiling: figures)
        try context.write(report)
    }
}
