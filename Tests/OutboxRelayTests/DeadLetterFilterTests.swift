import Foundation
import PostgresNIO
import Testing
@testable import OutboxRelay

/// Parsing and validation of `dlq` filters: every mistake is refused with a message that names
/// the option and says what a valid value looks like, before anything reaches the database.
@Suite struct DeadLetterFilterTests {
    let now = Date(timeIntervalSince1970: 1_795_687_200)  // 2026-11-26T10:00:00Z

    func problem(_ body: () throws(DeadLetterFilterError) -> Void) -> DeadLetterFilterError? {
        do {
            try body()
            return nil
        } catch {
            return error
        }
    }

    @Test func emptyFilterSelectsDeadRowsOnly() throws {
        let filter = try DeadLetterFilter.parse()
        #expect(filter.statuses == [.dead])
        #expect(filter.isUnrestricted)
    }

    @Test func valuesAreParsed() throws {
        let filter = try DeadLetterFilter.parse(
            topics: ["orders", "bad topic!"], keys: ["order-1"], reasons: ["message_too_large", " Invalid_Topic "],
            ids: ["17", "42"], since: "2026-11-25T10:00:00Z", until: "2h", status: "all", now: now)
        #expect(filter.topics == ["orders", "bad topic!"], "invalid Kafka names must be selectable: invalid_topic dead letters carry them")
        #expect(filter.keys == ["order-1"])
        #expect(filter.reasons == [.messageTooLarge, .invalidTopic])
        #expect(filter.ids == [17, 42])
        #expect(filter.since == .at(ISO8601DateFormatter().date(from: "2026-11-25T10:00:00Z")!))
        #expect(filter.until == .ago(.seconds(7200)))
        #expect(filter.statuses == DeadLetterStatus.allCases)
    }

    @Test(arguments: [
        ("2026-11-25T10:00:00Z", 1_795_600_800.0),
        ("2026-11-25T11:00:00+01:00", 1_795_600_800.0),
        ("2026-11-25T10:00:00.500Z", 1_795_600_800.5),
        ("2026-11-25", 1_795_564_800.0),
    ])
    func absoluteTimes(text: String, expected: Double) throws {
        #expect(try DeadLetterTimeBound.parse(text, option: "--since") == .at(Date(timeIntervalSince1970: expected)))
    }

    @Test(arguments: [
        ("90s", Duration.seconds(90)), ("15m", .seconds(900)), ("2h", .seconds(7200)), ("7d", .seconds(604_800)),
        ("2w", .seconds(1_209_600)), ("1d12h", .seconds(129_600)), ("1h30m", .seconds(5400)), ("2h ago", .seconds(7200)),
        ("500ms", .milliseconds(500)),
    ])
    func relativeDurations(text: String, expected: Duration) throws {
        #expect(try DeadLetterTimeBound.parse(text, option: "--since") == .ago(expected))
    }

    @Test(arguments: ["yesterday", "2h30", "10", "-2h", "2026-13-45T10:00:00Z", "2026/11/25", "2 hours", ""])
    func badTimesAreRefusedWithTheFix(text: String) {
        let error = problem { () throws(DeadLetterFilterError) in _ = try DeadLetterFilter.parse(since: text) }
        #expect(error?.option == "--since")
        #expect(error?.description.hasPrefix("invalid filter: --since: ") == true)
        #expect(error?.description.contains("2026-11-25T10:00:00Z") == true, "shows a valid example")
        #expect(error?.description.contains("2h") == true)
    }

    @Test func unknownReasonListsTheKnownOnes() {
        let error = problem { () throws(DeadLetterFilterError) in _ = try DeadLetterFilter.parse(reasons: ["too_big"]) }
        #expect(
            error?.description
                == "invalid filter: --reason: unknown reason \"too_big\"; use one of message_too_large, invalid_topic, undecodable, broker_rejected, attempts_exhausted")
    }

    @Test func badIDsStatusesAndCountsAreRefused() {
        #expect(problem { () throws(DeadLetterFilterError) in _ = try DeadLetterFilter.parse(ids: ["abc"]) }?.option == "--id")
        #expect(problem { () throws(DeadLetterFilterError) in _ = try DeadLetterFilter.parse(ids: ["0"]) }?.option == "--id")
        #expect(problem { () throws(DeadLetterFilterError) in _ = try DeadLetterFilter.parse(status: "gone") }?.description
            == "invalid filter: --status: \"gone\" is not one of dead, replayed, purged, all")
        #expect(problem { () throws(DeadLetterFilterError) in _ = try DeadLetterFilter.parse(topics: [""]) }?.option == "--topic")
        #expect(problem { () throws(DeadLetterFilterError) in _ = try DeadLetterFilter.parseCount("0", option: "--limit") }?.option == "--limit")
        #expect(problem { () throws(DeadLetterFilterError) in _ = try DeadLetterFilter.parseCount("ten", option: "--limit") }?.option == "--limit")
        #expect(try! DeadLetterFilter.parseCount(" 25 ", option: "--limit") == 25)
    }

    @Test func reversedRangesAreRefused() {
        let absolute = problem { () throws(DeadLetterFilterError) in
            _ = try DeadLetterFilter.parse(since: "2026-11-25T12:00:00Z", until: "2026-11-25T10:00:00Z", now: now)
        }
        #expect(absolute?.option == "--until")
        #expect(absolute?.description.contains("swap them") == true)
        // "since 1h ago until 2h ago" is reversed too (relative bounds count backwards).
        #expect(problem { () throws(DeadLetterFilterError) in _ = try DeadLetterFilter.parse(since: "1h", until: "2h", now: now) } != nil)
        #expect(problem { () throws(DeadLetterFilterError) in _ = try DeadLetterFilter.parse(since: "2h", until: "1h", now: now) } == nil)
    }

    @Test func replayRefusesAnInvalidTargetTopic() {
        let request = DeadLetterReplayRequest(filter: DeadLetterFilter(), toTopic: "bad topic!", actor: "test")
        let error = problem { () throws(DeadLetterFilterError) in try request.validate() }
        #expect(error?.option == "--to-topic")
        #expect(error?.description.hasPrefix("invalid option: --to-topic: ") == true)
        #expect(error?.description.contains("[a-zA-Z0-9._-]") == true)
        #expect(problem { () throws(DeadLetterFilterError) in
            try DeadLetterReplayRequest(filter: DeadLetterFilter(), toTopic: "orders.v2", actor: "test").validate()
        } == nil)
    }

    @Test func purgeRefusesPurgedRows() {
        let request = DeadLetterPurgeRequest(filter: DeadLetterFilter(statuses: [.purged]), actor: "test")
        #expect(problem { () throws(DeadLetterFilterError) in try request.validate() }?.option == "--status")
    }

    @Test func auditRecordKeepsTheOperatorsTerms() throws {
        let filter = try DeadLetterFilter.parse(
            topics: ["orders"], reasons: ["invalid_topic"], ids: ["5"], since: "2026-11-25T10:00:00Z", until: "30m", now: now)
        let json = try DeadLetterStore.auditJSON(filter, extra: ["to_topic": "orders.v2", "limit": 10])
        #expect(
            json == #"{"id":[5],"limit":10,"reason":["invalid_topic"],"since":"2026-11-25T10:00:00Z","status":["dead"],"to_topic":"orders.v2","topic":["orders"],"until":"30m"}"#)
    }

    @Test func conditionBindsValuesAndNeverSplicesThem() throws {
        let filter = try DeadLetterFilter.parse(
            topics: ["x'; DROP TABLE messages; --"], keys: ["k"], reasons: ["undecodable"], ids: ["3"],
            since: "1h", until: "2026-11-27T10:00:00Z", now: now)
        var binds = PostgresBindings()
        let sql = filter.condition(binds: &binds)
        #expect(!sql.contains("DROP"))
        #expect(binds.count == 7)
        #expect(sql.contains("$1") && sql.contains("$7"))
    }
}
