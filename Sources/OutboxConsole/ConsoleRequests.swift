import Foundation
import OutboxRelay

/// Form fields (or a JSON API body turned into them) → the same requests the CLI builds, checked
/// by the same code (`DeadLetterFilter.parse`, the requests' `validate`), so the console has no
/// second notion of what a filter, a replay or a purge means.
enum ConsoleRequests {
    static func filter(_ fields: FormFields) throws(DeadLetterFilterError) -> DeadLetterFilter {
        try DeadLetterFilter.parse(
            topics: fields.all("topic"), keys: fields.all("key"), reasons: fields.all("reason"), ids: fields.all("id"),
            since: fields.nonEmpty("since"), until: fields.nonEmpty("until"), status: fields.nonEmpty("status"))
    }

    static func actor(_ fields: FormFields) throws(DeadLetterFilterError) -> String {
        guard let actor = fields.nonEmpty("actor") else {
            throw DeadLetterFilterError(option: "actor", problem: "your name is required: it goes into the audit trail")
        }
        guard actor.count <= 200 else { throw DeadLetterFilterError(option: "actor", problem: "at most 200 characters") }
        return actor
    }

    static func limit(_ fields: FormFields) throws(DeadLetterFilterError) -> Int? {
        try fields.nonEmpty("limit").map { text throws(DeadLetterFilterError) in try DeadLetterFilter.parseCount(text, option: "limit") }
    }

    /// The dry run this request confirms: nil for the first step.
    static func confirming(_ fields: FormFields) throws(DeadLetterFilterError) -> Int64? {
        guard let text = fields.nonEmpty("confirm") else { return nil }
        guard let id = Int64(text), id > 0 else { throw DeadLetterFilterError(option: "confirm", problem: "not an audit id") }
        return id
    }

    static func replay(_ fields: FormFields) throws(DeadLetterFilterError) -> DeadLetterReplayRequest {
        let confirming = try confirming(fields)
        var request = DeadLetterReplayRequest(
            filter: try filter(fields), toTopic: fields.nonEmpty("to_topic"), limit: try limit(fields), dryRun: confirming == nil,
            actor: try actor(fields))
        request.confirming = confirming
        try request.validate()
        return request
    }

    static func purge(_ fields: FormFields) throws(DeadLetterFilterError) -> DeadLetterPurgeRequest {
        let confirming = try confirming(fields)
        var request = DeadLetterPurgeRequest(filter: try filter(fields), limit: try limit(fields), dryRun: confirming == nil, actor: try actor(fields))
        request.confirming = confirming
        try request.validate()
        return request
    }

    /// The JSON API's body for replay and purge: the same names as the form fields.
    struct ChangeBody: Decodable {
        var topic: [String]?
        var key: [String]?
        var reason: [String]?
        var id: [Int64]?
        var status: String?
        var since: String?
        var until: String?
        var toTopic: String?
        var limit: Int?
        var actor: String?
        /// The audit id of the dry run being confirmed; without it the call is the dry run.
        var confirm: Int64?

        var fields: FormFields {
            var pairs: [(name: String, value: String)] = []
            for value in topic ?? [] { pairs.append(("topic", value)) }
            for value in key ?? [] { pairs.append(("key", value)) }
            for value in reason ?? [] { pairs.append(("reason", value)) }
            for value in id ?? [] { pairs.append(("id", "\(value)")) }
            if let status { pairs.append(("status", status)) }
            if let since { pairs.append(("since", since)) }
            if let until { pairs.append(("until", until)) }
            if let toTopic { pairs.append(("to_topic", toTopic)) }
            if let limit { pairs.append(("limit", "\(limit)")) }
            if let actor { pairs.append(("actor", actor)) }
            if let confirm { pairs.append(("confirm", "\(confirm)")) }
            return FormFields(pairs: pairs)
        }
    }
}
