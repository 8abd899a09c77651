import ArgumentParser
import Foundation
@_spi(Benchmark) import OutboxRelay

/// The options `steady` and `chaos` share.
struct SteadyOptions: ParsableArguments {
    @Option(help: "Messages per second, enqueued one per transaction.") var rate = 2000
    @Option(help: "How long to enqueue, e.g. 60s or 2m.") var duration = "60s"
    @Option(help: "Relay processes to start.") var relays = 1
    @Option(name: .customLong("payload-bytes"), help: "Payload size.") var payloadBytes = 256
    @Option(help: "Distinct keys (each owned by one writer).") var keys = 1000
    @Option(name: .customLong("batch-size"), help: "Relay batch size.") var batchSize = 1000
    @Option(help: "Writer connections enqueueing concurrently.") var writers = 8
    @Flag(
        inversion: .prefixedNo,
        help: "BEGIN … COMMIT around each enqueue, as application code does; --no-explicit-transactions runs each enqueue as its own (autocommit) transaction, one round trip instead of three.")
    var explicitTransactions = true
    @Option(help: "Schema for the run (migrated if needed; must hold no pending messages).") var schema = "loadtest"
    @Option(help: "Folder for results (JSON, Markdown, HTML, relay logs).") var output = "loadtest-results"
    @Option(name: .customLong("http-port-base"), help: "Relay i serves /metrics on this port + i (0: off, no per-relay shares).")
    var httpPortBase = 19_470
    @Option(name: .customLong("broker-floor"), help: "Seconds of the broker-floor probe first (the same producer and consumer at the same rate, no database or relay; default: as long as --duration); 0 skips it.")
    var brokerFloorSeconds: Int?
    @Option(name: .customLong("relay-log-level"), help: "The relays' log level (their logs are in the results folder).")
    var relayLogLevel = "notice"
    @Flag(
        name: .customLong("hold-xmin"),
        help: "Keep a REPEATABLE READ transaction open from before the relays start to the end, as a long report or a stuck session would: no row published meanwhile can be vacuumed, so the relays' reads meet every dead row of the run.")
    var holdXmin = false

    var parsedDuration: Duration {
        get throws {
            guard let value = DurationParser.parse(duration), value >= .seconds(1) else {
                throw ValidationError("--duration: \(String(reflecting: duration)) is not a duration of at least 1s (e.g. 60s, 2m)")
            }
            return value
        }
    }

    func validate() throws {
        _ = try parsedDuration
        guard (1...100_000).contains(rate), (1...32).contains(relays), payloadBytes >= 0, keys >= 1,
            (1...10_000).contains(batchSize), (1...64).contains(writers), httpPortBase == 0 || (1024...65_000).contains(httpPortBase)
        else {
            throw ValidationError(
                "--rate 1-100000, --relays 1-32, --payload-bytes ≥ 0, --keys ≥ 1, --batch-size 1-10000, --writers 1-64, --http-port-base 0 or 1024-65000")
        }
    }
}
