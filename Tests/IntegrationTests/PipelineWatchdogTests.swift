import Foundation
import Logging
import PostgresNIO
import Testing
@testable import OutboxRelay

/// The lease keeper's watchdog against the real database: a relay whose batch loop stops turning
/// gives up its lanes and its membership (so the fleet's fair share covers every lane again), and
/// rejoins once the loop turns again.
@Suite(.serialized) struct PipelineWatchdogTests {
    @Test func aStalledPipelineReleasesEveryLaneAndRejoinsWhenItTurnsAgain() async throws {
        try await OutboxFixture.with { try await Self.stallAndRecover($0) }
    }

    static func stallAndRecover(_ fixture: OutboxFixture) async throws {
        do {
            let configuration = fixture.relayConfiguration { $0.pipelineStallLimit = .seconds(30) }
            let table = LeaseTable()
            let keeper = LeaseKeeper(
                store: RelayStore(client: fixture.client, schema: fixture.schema, relayID: configuration.relayID),
                table: table, doorbell: Doorbell(), configuration: configuration,
                identity: RelayIdentity(host: "test", pid: 1, version: "test"), logger: fixture.logger,
                metrics: RelayMetrics())
            let owned = "SELECT count(*) FROM {schema}.lanes WHERE owner = '\(configuration.relayID)'"
            let members = "SELECT count(*) FROM {schema}.relays WHERE id = '\(configuration.relayID)'"

            table.recordPipelineProgress()
            #expect(await keeper.watchPipeline(wasStalled: false) == false)
            await keeper.tick()
            #expect(try await fixture.scalar(owned, as: Int64.self) == 256)
            #expect(table.count == 256)

            // No turn of the loop for longer than the limit.
            table.recordPipelineProgress(at: .now - .seconds(31))
            #expect(await keeper.watchPipeline(wasStalled: false) == true)
            #expect(try await fixture.scalar(owned, as: Int64.self) == 0)
            #expect(try await fixture.scalar(members, as: Int64.self) == 0)
            #expect(table.count == 0)
            #expect(table.beginBatch(now: .now, horizon: .zero).isEmpty, "nothing left to publish or ack")
            table.endBatch()

            // The loop turns again: the keeper rejoins and claims.
            table.recordPipelineProgress()
            #expect(await keeper.watchPipeline(wasStalled: true) == false)
            await keeper.tick()
            #expect(try await fixture.scalar(owned, as: Int64.self) == 256)
            #expect(try await fixture.scalar(members, as: Int64.self) == 1)
        }
    }
}
