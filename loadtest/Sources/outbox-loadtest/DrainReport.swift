import Foundation

/// The result of one `drain` run: what was measured and the ledger that proves it.
struct DrainReport: Codable {
    struct Sample: Codable {
        var seconds: Double
        var pending: Int
    }

    var mode: String
    var messages: Int
    var relays: Int
    var payloadBytes: Int
    var keys: Int
    var batchSize: Int
    var topic: String
    var seedSeconds: Double
    var seedRate: Double
    /// From starting the relays to an empty outbox (includes process start and producer set-up).
    var drainSeconds: Double
    var throughput: Double
    var firstPublishSeconds: Double
    /// Messages ÷ (time from the first acknowledged batch to an empty outbox).
    var steadyThroughput: Double
    var relayPeakRSSMiB: Double
    var relayExitCodes: [Int32?]
    var ledger: LedgerCheck
    var samples: [Sample]
    var machine: String

    var markdown: String {
        """
        ## outbox-loadtest drain

        | | |
        |---|---|
        | messages | \(messages) × \(payloadBytes) B, \(keys) keys, batch \(batchSize) |
        | relays | \(relays) |
        | seed (COPY) | \(String(format: "%.2f s (%.0f msg/s)", seedSeconds, seedRate)) |
        | drain | \(String(format: "%.2f s → %.0f msg/s", drainSeconds, throughput)) |
        | steady (after first ack at \(String(format: "%.2f s", firstPublishSeconds))) | \(String(format: "%.0f msg/s", steadyThroughput)) |
        | relay peak RSS | \(String(format: "%.1f MiB", relayPeakRSSMiB)) |
        | relay exit codes | \(relayExitCodes.map { $0.map(String.init) ?? "killed" }.joined(separator: ", ")) |
        | ledger | consumed \(ledger.consumed), unique \(ledger.unique), **lost \(ledger.lost)**, duplicates \(ledger.duplicates), **order violations \(ledger.orderViolations)**, dead-lettered \(ledger.deadLettered) |
        | machine | \(machine) |

        """
    }
}
