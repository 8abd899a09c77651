import ArgumentParser
import Foundation
@_spi(Benchmark) import OutboxRelay

/// `chaos`: `steady` while relays are killed, frozen and restarted; the ledger must stay clean.
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Like steady, while relays are SIGKILLed, SIGSTOPped/SIGCONTed, SIGTERMed and restarted on a schedule; the ledger must stay clean.",
        discussion: """
            Default schedule for duration D: at 0.15·D SIGKILL relay 0 and restart it 2 s later; at 0.4·D
            SIGSTOP relay 1 and SIGCONT it a lease TTL + 2 s later (its lanes were taken over meanwhile; it
            must not write); at 0.7·D SIGTERM relay 2 and restart it 2 s later (relay numbers modulo --relays).
            Relays run with a short lease (--lease-ttl, renewal every third of it) so take-overs show within the run.
            """)

    @OptionGroup var options: SteadyOptions
    @Option(help: "A fault, AT:ACTION:RELAY with ACTION kill|stop|cont|term|start, e.g. 10s:kill:0 (repeatable; replaces the default schedule).")
    var fault: [Fault] = []
    @Option(name: .customLong("lease-ttl"), help: "The relays' lease TTL.") var leaseTTL = "4s"

    func validate() throws {
        guard let ttl = DurationParser.parse(leaseTTL), ttl >= .seconds(2) else {
            throw ValidationError("--lease-ttl: \(String(reflecting: leaseTTL)) is not a duration of at least 2s")
        }
        _ = ttl
        if let bad = fault.first(where: { $0.relay >= options.relays }) {
            throw ValidationError("--fault \(bad): there are only \(options.relays) relays (0-\(options.relays - 1))")
        }
    }

    func run() async throws {
        let context = try LoadtestContext.make(mode: "chaos", schema: options.schema, output: options.output)
        let duration = try options.parsedDuration
        let ttl = DurationParser.parse(leaseTTL)!
        let renew = ttl / 3
        let schedule = fault.isEmpty ? Fault.defaultSchedule(duration: duration, relays: options.relays, leaseTTL: ttl) : fault
        let run = SteadyRun(
            mode: "chaos", rate: options.rate, duration: duration, relays: options.relays,
            payloadBytes: options.payloadBytes, keys: options.keys, batchSize: options.batchSize, writers: options.writers,
            explicitTransactions: options.explicitTransactions,
            relayArguments: ["--log-level", options.relayLogLevel, "--lease-ttl", "\(ttl.milliseconds)ms", "--renew-interval", "\(renew.milliseconds)ms"],
            faults: schedule, httpPortBase: options.httpPortBase, settleTimeout: ttl * 3 + .seconds(60))
        var configured = run
        configured.brokerFloorSeconds = options.brokerFloorSeconds
        let report = try await configured.run(context: context)
        try context.write(report)
        guard report.ledger?.clean == true else {
            Progress.line("outbox-loadtest: the ledger is not clean")
            throw ExitCode(1)
        }
    }
}
