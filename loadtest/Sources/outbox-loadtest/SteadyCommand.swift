import ArgumentParser
import Foundation

/// `steady`: a fixed rate of real transactions, and the commit → consume latency of every message.
struct SteadyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steady",
        abstract: "Enqueue at a fixed rate in real transactions (OutboxWriter), follow the topic, report commit → consume latency (HDR percentiles) and the ledger.",
        discussion: """
            The relays run with their default poll interval (1s): latency well below it shows LISTEN/NOTIFY
            waking them. Targets checked (at 2,000 msg/s): p50 ≤ 5 ms, p99 ≤ 25 ms.
            """)

    @OptionGroup var options: SteadyOptions

    func run() async throws {
        let context = try LoadtestContext.make(mode: "steady", schema: options.schema, output: options.output)
        let run = SteadyRun(
            mode: "steady", rate: options.rate, duration: try options.parsedDuration, relays: options.relays,
            payloadBytes: options.payloadBytes, keys: options.keys, batchSize: options.batchSize, writers: options.writers,
            explicitTransactions: options.explicitTransactions,
            relayArguments: ["--log-level", options.relayLogLevel], faults: [], httpPortBase: options.httpPortBase, settleTimeout: .seconds(60))
        var configured = run
        configured.brokerFloorSeconds = options.brokerFloorSeconds
        configured.holdXmin = options.holdXmin
        let report = try await configured.run(context: context)
        try context.write(report)
        guard report.ledger?.clean == true, report.relayExitCodes.allSatisfy({ $0 == 0 }) else {
            Progress.line("outbox-loadtest: the ledger is not clean or a relay did not exit cleanly")
            throw ExitCode(1)
        }
    }
}
