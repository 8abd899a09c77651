import Foundation
import OutboxRelay

/// The dead-letter pages: the list with the CLI's filters, one dead letter, the stats, the audit
/// trail, and the two steps of a replay or purge (a dry run, then an explicit confirm).
enum DeadLetterPages {
    /// The filter fields the list, stats, replay and purge share (the CLI's options).
    static let filterNames = ["topic", "key", "reason", "status", "since", "until"]

    static func filterForm(_ fields: FormFields, action: String) -> HTML {
        var form = HTML(trusted: "<form method=\"get\" action=\"\(HTML.escape(action))\" class=\"filters\">")
        form.append(ConsolePages.input("topic", label: "Topic", value: fields.first("topic")))
        form.append(ConsolePages.input("key", label: "Key", value: fields.first("key")))
        form.append(ConsolePages.select("reason", label: "Reason", options: [""] + DeadLetterReason.allCases.map(\.rawValue), selected: fields.first("reason")))
        form.append(ConsolePages.select("status", label: "Status", options: ["dead", "replayed", "purged", "all"], selected: fields.first("status") ?? "dead"))
        form.append(ConsolePages.input("since", label: "Since", value: fields.first("since"), placeholder: "30m, 2h, 7d or 2026-12-01T10:00:00Z"))
        form.append(ConsolePages.input("until", label: "Until", value: fields.first("until"), placeholder: "ISO-8601 or a duration ago"))
        form.append(trusted: "<button type=\"submit\">Filter</button></form>")
        return form
    }

    static func list(
        _ rows: [DeadLetterSummary], more: Bool, filter fields: FormFields, filter: DeadLetterFilter, chrome: ConsolePages.Chrome
    ) -> HTML {
        var html = HTML.element("h1", text: "Dead letters")
        html.append(filterForm(fields, action: "/dead-letters"))
        html.append(
            ConsolePages.table(
                ["id", "topic", "key", "reason", "attempts", "status", "dead at", "bytes", "error"],
                rows.map { row in
                    [
                        HTML.element("a", ["href": "/dead-letters/\(row.id)"], text: "\(row.id)"), HTML.element("code", text: row.topic),
                        HTML.element("code", text: row.keyDisplay), .text(row.reason), .text("\(row.attempts)"), .text(row.status.rawValue),
                        .text(ConsolePages.time(row.deadAt)), .text("\(row.payloadBytes)"),
                        HTML.element("span", ["class": "error-text"], text: String(row.error.prefix(160))),
                    ]
                }, caption: rows.isEmpty ? "No dead letters match." : "\(rows.count) shown, oldest first\(more ? "; more follow" : "")"))
        var pager = FormFields(pairs: fields.pairs.filter { filterNames.contains($0.name) })
        if more, let last = rows.last {
            pager.pairs.append(("after", "\(last.id)"))
            html.append(HTML.element("p", [:], HTML.element("a", ["href": "/dead-letters?\(pager.queryString)", "rel": "next"], text: "Next page →")))
        }
        if !chrome.readOnly && !rows.isEmpty {
            html.append(changeForms(fields, chrome: chrome))
        }
        return html
    }

    /// The first step of a replay or purge: a POST that runs the dry run (audited) and shows it.
    static func changeForms(_ fields: FormFields, chrome: ConsolePages.Chrome) -> HTML {
        let carried = FormFields(pairs: fields.pairs.filter { filterNames.contains($0.name) && !$0.value.isEmpty })
        var html = HTML.element("h2", text: "Replay or purge what this filter selects")
        var replay = HTML(trusted: "<form method=\"post\" action=\"/dead-letters/replay\" class=\"change\">")
        replay.append(ConsolePages.hiddenFields(carried))
        replay.append(HTML(trusted: "<input type=\"hidden\" name=\"csrf\" value=\"\(HTML.escape(chrome.csrfToken))\">"))
        replay.append(ConsolePages.input("actor", label: "Your name (for the audit trail)", value: nil, placeholder: "alice@ops", required: true))
        replay.append(ConsolePages.input("to_topic", label: "To topic (optional)", value: nil, placeholder: "the original topic"))
        replay.append(ConsolePages.input("limit", label: "At most", value: nil, placeholder: "all", type: "number"))
        replay.append(trusted: "<button type=\"submit\">Dry run: what would be replayed?</button></form>")
        html.append(replay)
        var purge = HTML(trusted: "<form method=\"post\" action=\"/dead-letters/purge\" class=\"change\">")
        purge.append(ConsolePages.hiddenFields(carried))
        purge.append(HTML(trusted: "<input type=\"hidden\" name=\"csrf\" value=\"\(HTML.escape(chrome.csrfToken))\">"))
        purge.append(ConsolePages.input("actor", label: "Your name (for the audit trail)", value: nil, placeholder: "alice@ops", required: true))
        purge.append(ConsolePages.input("limit", label: "At most", value: nil, placeholder: "all", type: "number"))
        purge.append(trusted: "<button type=\"submit\">Dry run: what would be purged?</button></form>")
        html.append(purge)
        return html
    }

    /// The dry run's result and the confirm form, which carries exactly the same selection and the
    /// dry run's audit id (the store refuses a confirm whose dry run differs).
    static func preview(
        action: String, count: Int, sample: [DeadLetterSummary], auditID: Int64, toTopic: String?, fields: FormFields,
        chrome: ConsolePages.Chrome
    ) -> HTML {
        let verb = action == "replay" ? "replayed" : "purged"
        var html = HTML.element("h1", text: "Dry run: \(count) dead letter(s) would be \(verb)")
        var detail = "Nothing has changed yet (dry run recorded as audit \(auditID))."
        if action == "replay" {
            detail += toTopic.map { " They would be published to topic \($0)." } ?? " They would be published to their original topics."
        } else {
            detail += " Their payloads would be dropped; the rows stay as tombstones."
        }
        html.append(HTML.element("p", ["class": "summary"], text: detail))
        html.append(
            ConsolePages.table(
                ["id", "topic", "key", "reason", "dead at"],
                sample.map { [.text("\($0.id)"), HTML.element("code", text: $0.topic), HTML.element("code", text: $0.keyDisplay), .text($0.reason), .text(ConsolePages.time($0.deadAt))] },
                caption: count > sample.count ? "The first \(sample.count) of \(count)" : "All \(count)"))
        guard count > 0 else { return html + HTML.element("p", text: "Nothing to do.") }
        var confirm = HTML(trusted: "<form method=\"post\" action=\"/dead-letters/\(action)\" class=\"confirm\">")
        var carried = FormFields(pairs: fields.pairs.filter { $0.name != "csrf" && $0.name != "confirm" })
        carried.pairs.append(("confirm", "\(auditID)"))
        confirm.append(ConsolePages.hiddenFields(carried))
        confirm.append(HTML(trusted: "<input type=\"hidden\" name=\"csrf\" value=\"\(HTML.escape(chrome.csrfToken))\">"))
        confirm.append(trusted: "<button type=\"submit\" class=\"danger\">Confirm: \(action) \(count) dead letter(s)</button> ")
        confirm.append(HTML.element("a", ["href": "/dead-letters"], text: "Cancel"))
        confirm.append(trusted: "</form>")
        return html + confirm
    }

    static func replayed(_ result: DeadLetterReplayResult, toTopic: String?) -> HTML {
        var html = HTML.element("h1", text: "Replayed \(result.count) dead letter(s)")
        html.append(
            HTML.element(
                "p", ["class": "summary"],
                text: "Audit \(result.auditID). Relays publish them\(toTopic.map { " to topic \($0)" } ?? "") after what is already pending for their keys."))
        html.append(
            ConsolePages.table(
                ["dead letter", "new outbox message"],
                result.replayed.prefix(200).map { [HTML.element("a", ["href": "/dead-letters/\($0.deadLetterID)"], text: "\($0.deadLetterID)"), .text("\($0.outboxID)")] }))
        return html + HTML.element("p", [:], HTML.element("a", ["href": "/audit"], text: "The audit trail"))
    }

    static func purged(_ result: DeadLetterPurgeResult) -> HTML {
        HTML.element("h1", text: "Purged \(result.count) dead letter(s)")
            + HTML.element("p", ["class": "summary"], text: "Audit \(result.auditID). Their payloads are gone; the rows stay as tombstones.")
            + HTML.element("p", [:], HTML.element("a", ["href": "/audit"], text: "The audit trail"))
    }

    enum PayloadView: String, CaseIterable { case text, json, hex }

    static func detail(_ letter: DeadLetter, view: PayloadView) -> HTML {
        let s = letter.summary
        var html = HTML.element("h1", text: "Dead letter \(s.id)")
        var rows: [(String, HTML)] = [
            ("topic", HTML.element("code", text: s.topic)), ("key", HTML.element("code", text: s.keyDisplay)), ("lane", .text("\(letter.lane)")),
            ("reason", .text(s.reason)), ("attempts", .text("\(s.attempts)")), ("status", .text(s.status.rawValue)),
            ("created", .text(ConsolePages.time(s.createdAt))), ("dead since", .text(ConsolePages.time(s.deadAt))),
            ("dead-lettered by", .text(letter.relay ?? "-")), ("type", .text(letter.type ?? "-")), ("content type", .text(letter.contentType ?? "-")),
        ]
        if let replayID = s.replayID {
            rows.append(("replayed as", .text("outbox message \(replayID)\(letter.replayState.map { " (\($0))" } ?? "")")))
        }
        if let replayOf = letter.replayOf {
            rows.append(("replay of", HTML.element("a", ["href": "/dead-letters/\(replayOf)"], text: "dead letter \(replayOf)")))
        }
        if let action = letter.lastAction {
            rows.append(("last action", .text("\(action.action) by \(action.actor) at \(ConsolePages.time(action.at)) (audit \(action.id))")))
        }
        var list = HTML(trusted: "<dl class=\"fields\">")
        for (name, value) in rows { list.append(HTML.element("dt", text: name) + HTML.element("dd", [:], value)) }
        list.append(trusted: "</dl>")
        html.append(list)
        html.append(HTML.element("h2", text: "Error"))
        html.append(HTML.element("pre", ["class": "error-text"], text: s.error))
        html.append(HTML.element("h2", text: "Headers"))
        html.append(HTML.element("pre", [:], text: prettyJSON(Data(letter.headersJSON.utf8)) ?? letter.headersJSON))
        html.append(HTML.element("h2", text: "Payload (\(letter.payload.count) bytes)"))
        var tabs = HTML()
        for option in PayloadView.allCases {
            let label = option == .json ? "pretty JSON" : option.rawValue
            tabs.append(HTML.element("a", option == view ? ["href": "?view=\(option.rawValue)", "aria-current": "true"] : ["href": "?view=\(option.rawValue)"], text: label))
        }
        html.append(HTML.element("nav", ["class": "tabs", "aria-label": "payload view"], tabs))
        html.append(HTML.element("pre", ["class": "payload", "id": "payload"], text: payloadText(letter.payload, view: view)))
        return html
    }

    static func payloadText(_ payload: Data, view: PayloadView) -> String {
        switch view {
        case .text:
            return String(validating: Array(payload), as: UTF8.self) ?? "(not valid UTF-8: see hex)\n" + hexDump(payload)
        case .json:
            return prettyJSON(payload) ?? "(not JSON: shown as text)\n" + (String(validating: Array(payload), as: UTF8.self) ?? hexDump(payload))
        case .hex:
            return hexDump(payload)
        }
    }

    static func prettyJSON(_ data: Data) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]),
            let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
        else { return nil }
        return String(decoding: pretty, as: UTF8.self)
    }

    static func hexDump(_ data: Data) -> String {
        let bytes = Array(data.prefix(64 * 1024))
        var lines: [String] = []
        for start in stride(from: 0, to: bytes.count, by: 16) {
            let chunk = bytes[start..<min(start + 16, bytes.count)]
            let hex = chunk.map { String(format: "%02x", $0) }.joined(separator: " ")
            let text = String(chunk.map { (0x20..<0x7F).contains($0) ? Character(Unicode.Scalar($0)) : "." })
            lines.append(String(format: "%08x  ", start) + hex.padding(toLength: 48, withPad: " ", startingAt: 0) + "  " + text)
        }
        if data.count > bytes.count { lines.append("… \(data.count - bytes.count) more bytes") }
        return lines.joined(separator: "\n")
    }

    static func stats(_ stats: DeadLetterStats, fields: FormFields) -> HTML {
        var html = HTML.element("h1", text: "Dead letters by topic and reason")
        html.append(filterForm(fields, action: "/dead-letters/stats"))
        html.append(
            ConsolePages.table(
                ["topic", "reason", "count", "first", "last", ""],
                stats.groups.map { group in
                    let link = FormFields(pairs: [("topic", group.topic), ("reason", group.reason)] + fields.pairs.filter { $0.name == "status" })
                    return [
                        HTML.element("code", text: group.topic), .text(group.reason), .text("\(group.count)"),
                        .text(ConsolePages.time(group.oldestDeadAt)), .text(ConsolePages.time(group.newestDeadAt)),
                        HTML.element("a", ["href": "/dead-letters?\(link.queryString)"], text: "list"),
                    ]
                }, caption: "\(stats.total) in all"))
        return html
    }

    static func audit(_ entries: [DeadLetterAuditEntry]) -> HTML {
        HTML.element("h1", text: "Audit trail")
            + ConsolePages.table(
                ["audit", "at", "actor", "action", "count", "dry run", "selection"],
                entries.map {
                    [.text("\($0.id)"), .text(ConsolePages.time($0.at)), .text($0.actor), .text($0.action), .text("\($0.count)"), .text($0.dryRun ? "dry run" : "done"), HTML.element("code", text: $0.filterJSON)]
                }, caption: "Newest first (\(entries.count) shown)")
    }
}
