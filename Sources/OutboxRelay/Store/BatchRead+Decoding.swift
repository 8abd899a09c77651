import Foundation
import NIOCore
import PostgresNIO

extension BatchRead {
    /// Decodes the answer of a batch read (`RelayStore.SQL`'s `readBatch` and `readBatchPerLane`:
    /// the snapshot's three columns, then the row's ten, the row's all null when the batch is empty).
    ///
    /// Cell by cell with concrete types rather than `rows.decode((Int64, [Int16], …).self)`: that
    /// tuple decode is generic across the module boundary, so each cell went through PostgresNIO's
    /// unspecialized code and the Swift runtime's metadata caches, about a fifth of the relay's
    /// CPU in a profiled drain. `PostgresCell.decode` is inlinable and specializes here, and the
    /// snapshot's columns, which the statement's join repeats on every row, are decoded from the
    /// first row only.
    static func decode(_ rows: PostgresRowSequence, limit: Int) async throws -> BatchRead {
        var batch = BatchRead(rows: [], oldestRunningTransaction: 0)
        batch.rows.reserveCapacity(limit)
        var first = true
        for try await row in rows {
            var cells = row.makeIterator()
            func next() throws -> PostgresCell {
                guard let cell = cells.next() else { throw RelayStoreError.unexpectedBatchAnswer(columns: row.count) }
                return cell
            }
            let oldest = try next(), dueLanes = try next(), dueIDs = try next()
            if first {
                first = false
                batch.oldestRunningTransaction = try oldest.decode(Int64.self, context: .default)
                let lanes = try dueLanes.decode([Int16].self, context: .default)
                let ids = try dueIDs.decode([Int64].self, context: .default)
                batch.dueRetries = zip(lanes, ids).map { (lane: $0, id: $1) }
            }
            let id = try next()
            guard id.bytes != nil else { continue }  // the empty batch's one row: the snapshot alone
            let topic = try next(), key = try next(), lane = try next(), payload = try next(), headers = try next()
            let contentType = try next(), type = try next(), createdAt = try next(), attempts = try next()
            batch.rows.append(
                PendingMessage(
                    id: try id.decode(Int64.self, context: .default),
                    topic: try topic.decode(String.self, context: .default),
                    key: key.bytes,
                    lane: try lane.decode(Int16.self, context: .default),
                    payload: try payload.decode(ByteBuffer.self, context: .default),
                    headersJSON: try headers.decode(String.self, context: .default),
                    contentType: try contentType.decode(String?.self, context: .default),
                    type: try type.decode(String?.self, context: .default),
                    createdAt: try createdAt.decode(Date.self, context: .default),
                    attempts: try attempts.decode(Int32.self, context: .default)))
        }
        return batch
    }
}
