import Foundation
import NIOCore
import Testing

@testable import OutboxRelay

/// The batch byte limit (`batch.max_bytes`): how it is written, and that a read it cut never
/// moves a lane past its last row (what lies beyond was not looked at).
@Suite struct BatchByteLimitTests {
    private let base = ["OUTBOX_DATABASE_URL": "postgres://relay@db/app"]

    @Test func sizesAreBytesOrWholeBinaryUnits() {
        #expect(ByteSize.parse("65536") == 65_536)
        #expect(ByteSize.parse("16MiB") == 16 << 20)
        #expect(ByteSize.parse("16 mib") == 16 << 20)
        #expect(ByteSize.parse("512KiB") == 512 << 10)
        #expect(ByteSize.parse("1GiB") == 1 << 30)
        #expect(ByteSize.parse("100B") == 100)
        for bad in ["", "MiB", "1.5MiB", "16MB", "-1", "lots", "9999999999999GiB", "１６MiB"] {
            #expect(ByteSize.parse(bad) == nil, "\(bad)")
        }
        #expect(ByteSize.describe(16 << 20) == "16MiB")
        #expect(ByteSize.describe(64 << 10) == "64KiB")
        #expect(ByteSize.describe(1000) == "1000 B")
    }

    @Test func theSettingDefaultsTo16MiBAndSaysWhatIsWrong() throws {
        #expect(try RelaySettings(values: base, defaultRelayID: "x").relay.batchMaxBytes == 16 << 20)
        #expect(try RelaySettings(values: base.merging(["OUTBOX_BATCH_MAX_BYTES": "4MiB"]) { $1 }, defaultRelayID: "x").relay.batchMaxBytes == 4 << 20)
        func problem(_ text: String) -> String? {
            do {
                _ = try RelaySettings(values: base.merging(["OUTBOX_BATCH_MAX_BYTES": text]) { $1 }, defaultRelayID: "x")
                return nil
            } catch {
                return error.description
            }
        }
        #expect(problem("16MB")?.contains("like 512KiB, 16MiB or 1GiB") == true)
        #expect(problem("1KiB")?.contains("use 64KiB to 1GiB") == true)
        #expect(problem("2GiB")?.contains("out of range") == true)
    }

    private func row(_ id: Int64, lane: Int16, bytes: Int) -> PendingMessage {
        PendingMessage(
            id: id, topic: "t", key: ByteBuffer(string: "k"), lane: lane, payload: ByteBuffer(repeating: 0, count: bytes - 1),
            headersJSON: "{}", contentType: nil, type: nil, createdAt: Date(), attempts: 0)
    }

    @Test func aRowCountsItsPayloadAndKey() {
        #expect(row(1, lane: 1, bytes: 100).budgetBytes == 100)
        var keyless = row(1, lane: 1, bytes: 100)
        keyless.key = nil
        #expect(keyless.budgetBytes == 99)
    }

    /// Cursors of lanes 1 and 2 whose next read's snapshot puts the frontier at 5,000.
    private func cursors() -> LaneCursors {
        var cursors = LaneCursors()
        cursors.sync(with: [LaneLease(lane: 1, epoch: 1), LaneLease(lane: 2, epoch: 1)])
        cursors.observe(BatchRead(rows: [row(5_000, lane: 2, bytes: 10)], oldestRunningTransaction: 5), lanes: [1, 2], limit: 10)
        cursors.sending([5_000])
        cursors.finished([5_000], lanes: [1, 2])
        cursors.wrote(transaction: 5_001)
        return cursors
    }

    @Test func anIDOrderReadCutByBytesCoversOnlyToItsLastRow() {
        var cursors = cursors()
        var read = BatchRead(rows: [row(1_001, lane: 1, bytes: 600), row(1_002, lane: 2, bytes: 600)], oldestRunningTransaction: 5_002)
        read.reachedByteLimit = true
        #expect(read.stoppedShort(limit: 10))
        cursors.observe(read, lanes: [1, 2], limit: 10)
        cursors.sending([1_001, 1_002])
        #expect(cursors.floor(of: 1) == 1_002, "1,003 onwards was not looked at")
        #expect(cursors.floor(of: 2) == 1_002)
        // The same rows under the byte limit: everything to the frontier was looked at.
        var whole = self.cursors()
        read.reachedByteLimit = false
        whole.observe(read, lanes: [1, 2], limit: 10)
        whole.sending([1_001, 1_002])
        #expect(whole.floor(of: 1) == 5_000)
    }

    @Test func aPerLaneReadCutByBytesMovesEachLaneOnlyToItsLastRow() {
        var cursors = cursors()
        let shape = cursors.shape(for: [1, 2], limit: 10, walk: .perLane)
        var read = BatchRead(rows: [row(1_001, lane: 1, bytes: 600), row(1_002, lane: 1, bytes: 600)], oldestRunningTransaction: 5_002)
        read.reachedByteLimit = true
        cursors.observe(read, lanes: [1, 2], shape: shape, limit: 10)
        cursors.sending([1_001, 1_002])
        #expect(cursors.floor(of: 1) == 1_002, "under its quota, but the bytes may have cut it")
        #expect(cursors.floor(of: 2) == 0, "lane 2 returned nothing of a cut batch")
        guard case .perLane(let next) = cursors.shape(for: [1, 2], limit: 10, walk: .perLane) else {
            Issue.record("not per lane")
            return
        }
        #expect(next.map(\.quota) == [5, 5], "a cut batch grows no quota")
    }
}
