import Foundation
import MetricsTestKit
import PostgresNIO
import Testing
@testable import OutboxRelay

/// The lease counters against the real database, tick by tick: claims count as acquired, every
/// renewal statement once, a lane another relay took over as lost — and a voluntary release not.
@Suite(.serialized) struct LeaseMetricsTests {
    @Test func aTakeoverCountsAsLostAndAReleaseDoesNot() async throws {
        try await OutboxFixture.with { fixture in
            let recorded = TestMetrics()
            let configuration = fixture.relayConfiguration()
            let table = LeaseTable()
            let keeper = LeaseKeeper(
                store: RelayStore(client: fixture.client, schema: fixture.schema, relayID: configuration.relayID),
                table: table, doorbell: Doorbell(), configuration: configuration,
                identity: RelayIdentity(host: "test", pid: 1, version: "test"), logger: fixture.logger,
                metrics: RelayMetrics(factory: recorded))
            func total(_ name: String) throws -> Int64 { try recorded.expectCounter(name).totalValue }

            await keeper.tick()
            #expect(try total(RelayMetrics.Name.lanesAcquired) == 256, "the only relay claims every lane")
            #expect(try total(RelayMetrics.Name.leaseRenewals) == 0, "nothing was held to renew")

            await keeper.tick()
            #expect(try total(RelayMetrics.Name.leaseRenewals) == 1)
            #expect(try total(RelayMetrics.Name.lanesLost) == 0)

            // Another relay takes lane 7 over (as after an expiry): a new owner and epoch.
            try await fixture.client.query(
                PostgresQuery(unsafeSQL: "UPDATE \(fixture.schema.rawValue).lanes SET owner = 'thief', epoch = epoch + 1 WHERE lane = 7"),
                logger: fixture.logger)
            await keeper.tick()
            #expect(try total(RelayMetrics.Name.leaseRenewals) == 2)
            #expect(try total(RelayMetrics.Name.lanesLost) == 1)
            #expect(table.count == 255)
            #expect(try total(RelayMetrics.Name.lanesAcquired) == 256, "lane 7's new lease is still valid: nothing to claim")

            await keeper.releaseAll()
            #expect(try total(RelayMetrics.Name.lanesLost) == 1, "handing lanes back is not losing them")
        }
    }
}
