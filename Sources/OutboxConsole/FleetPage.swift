import Foundation
import OutboxRelay

/// The fleet page: relays, the lane grid, the backlog per topic, the throughput.
enum FleetPage {
    static func body(_ fleet: FleetSnapshot, throughput: [ThroughputHistory.Sample]) -> HTML {
        var html = HTML.element("h1", text: "Fleet")
        let alive = fleet.relays.filter(\.alive).count
        let held = fleet.lanes.filter { $0.state == "held" }.count
        let expired = fleet.lanes.filter { $0.state == "expired" }.count
        var summary = "\(alive) relay(s) alive, \(held) of \(fleet.lanes.count) lanes held"
        if expired > 0 { summary += ", \(expired) expired" }
        summary += "; \(fleet.pending) pending, \(fleet.deadLetters) dead letter(s). Read at \(ConsolePages.time(fleet.readAt))."
        html.append(HTML.element("p", ["class": "summary", "id": "fleet-summary"], text: summary))
        // Stepped-back relays heartbeat but claim nothing: only the others will take the lanes.
        let claiming = fleet.relays.filter { $0.alive && !$0.steppedBack }.count
        if fleet.lanes.count - held > 0 && alive > 0 {
            let unheld = fleet.lanes.filter { $0.state != "held" }.map { "\($0.lane)" }
            let listed = unheld.prefix(32).joined(separator: ", ") + (unheld.count > 32 ? ", …" : "")
            let when = claiming > 0
                ? "until a relay claims them (within one renew interval while relays run)"
                : "until a broker answers: every live relay has stepped back, its broker unreachable, and claims nothing until then"
            html.append(
                HTML.element(
                    "p", ["class": "warning", "role": "status"],
                    text: "\(unheld.count) lane(s) have no live lease (\(listed)): their messages wait \(when)."))
        }

        html.append(HTML.element("h2", text: "Relays"))
        let ownerIndex = Dictionary(uniqueKeysWithValues: fleet.relays.enumerated().map { ($0.element.id, $0.offset) })
        html.append(
            ConsolePages.table(
                ["", "relay", "host", "pid", "version", "up since", "last heartbeat", "lanes", "state"],
                fleet.relays.map { relay in
                    [
                        HTML.element("span", ["class": "swatch o\(ownerIndex[relay.id]! % 8)", "aria-hidden": "true"]),
                        HTML.element("code", text: relay.id), .text(relay.host), .text("\(relay.pid)"), .text(relay.version),
                        .text(ConsolePages.time(relay.startedAt)), .text("\(ConsolePages.age(relay.heartbeatAgeSeconds)) ago"),
                        .text("\(relay.lanesHeld)"),
                        HTML.element("span", ["class": relay.needsAttention ? "bad" : "ok"], text: relay.state),
                    ]
                }))
        if fleet.relays.isEmpty { html.append(HTML.element("p", text: "No relay has registered in this schema.")) }

        html.append(HTML.element("h2", text: "Lanes"))
        var grid = HTML()
        for lane in fleet.lanes {
            let title: String
            let cellClass: String
            switch lane.state {
            case "held":
                title = "lane \(lane.lane): \(lane.owner ?? ""), lease \(String(format: "%.1f", lane.leaseSecondsLeft ?? 0)) s left, epoch \(lane.epoch)"
                cellClass = "lane o\((lane.owner.flatMap { ownerIndex[$0] } ?? 0) % 8)"
            case "expired":
                title = "lane \(lane.lane): lease of \(lane.owner ?? "") expired \(ConsolePages.age(-(lane.leaseSecondsLeft ?? 0))) ago, epoch \(lane.epoch)"
                cellClass = "lane expired"
            default:
                title = "lane \(lane.lane): free"
                cellClass = "lane free"
            }
            grid.append(HTML.element("li", ["class": cellClass, "title": title, "data-lane": "\(lane.lane)", "data-owner": lane.owner ?? ""], text: "\(lane.lane)"))
        }
        html.append(HTML.element("ol", ["class": "lanes", "aria-label": "lanes by owner"], grid))
        html.append(HTML.element("p", ["class": "legend"], text: "Each square is a lane, coloured by the relay holding it (the swatches above); outlined: free; hatched: lease expired. Hover for the lease time left."))

        html.append(HTML.element("h2", text: "Lanes waiting longest"))
        let laneIndex = Dictionary(uniqueKeysWithValues: fleet.lanes.map { ($0.lane, $0) })
        if fleet.oldestLanes.isEmpty {
            html.append(HTML.element("p", text: "No lane has pending messages."))
        } else {
            html.append(
                ConsolePages.table(
                    ["lane", "held by", "pending", "oldest", "most attempts"],
                    fleet.oldestLanes.map { backlog in
                        let lease = laneIndex[backlog.lane]
                        let holder: HTML =
                            switch lease?.state {
                            case "held": HTML.element("code", text: lease?.owner ?? "")
                            case "expired": HTML.element("span", ["class": "bad"], text: "nobody: the lease of \(lease?.owner ?? "") expired")
                            default: HTML.element("span", ["class": "bad"], text: "nobody (free)")
                            }
                        return [
                            .text("\(backlog.lane)"), holder, .text("\(backlog.pending)"), .text(ConsolePages.age(backlog.oldestAgeSeconds)),
                            .text("\(backlog.maxAttempts)"),
                        ]
                    },
                    caption: "The \(FleetSnapshot.oldestLanesShown) lanes with the oldest pending messages: a lane whose oldest keeps ageing while its holder is ready is stuck behind a retry (see its attempts) or a slow partition."))
        }

        html.append(HTML.element("h2", text: "Pending by topic"))
        html.append(
            ConsolePages.table(
                ["topic", "pending", "ready", "waiting for a retry", "oldest"],
                fleet.topics.map { topic in
                    [
                        HTML.element("code", text: topic.topic), .text("\(topic.pending)"), .text("\(topic.ready)"), .text("\(topic.retrying)"),
                        .text(ConsolePages.age(topic.oldestAgeSeconds)),
                    ]
                }))
        if fleet.topics.isEmpty { html.append(HTML.element("p", text: "The outbox is empty.")) }

        html.append(HTML.element("h2", text: "Throughput"))
        html.append(throughputChart(throughput))
        return html
    }

    /// A bar chart as inline SVG (markup, not script: allowed by the CSP), newest on the right.
    static func throughputChart(_ samples: [ThroughputHistory.Sample]) -> HTML {
        guard let latest = samples.last else {
            return HTML.element("p", text: "Collecting: the console samples the rows leaving the outbox at every refresh; the history starts when the console does.")
        }
        let shown = samples.suffix(90)
        let peak = max(shown.map(\.perSecond).max() ?? 1, 1)
        let width = 720.0, height = 120.0, barWidth = width / 90
        var svg = HTML(trusted: "<svg class=\"chart\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"messages leaving the outbox per second\">")
        for (index, sample) in shown.enumerated() {
            let h = max(sample.perSecond / peak * (height - 4), sample.perSecond > 0 ? 1 : 0)
            let x = width - Double(shown.count - index) * barWidth
            svg.append(
                trusted: "<rect x=\"\(String(format: "%.1f", x))\" y=\"\(String(format: "%.1f", height - h))\" width=\"\(String(format: "%.1f", barWidth - 1))\" height=\"\(String(format: "%.1f", h))\"><title>\(HTML.escape(ConsolePages.time(sample.at))): \(Int(sample.perSecond.rounded())) msg/s</title></rect>")
        }
        svg.append(trusted: "</svg>")
        let average = shown.reduce(0) { $0 + $1.perSecond } / Double(shown.count)
        return svg
            + HTML.element(
                "p", ["class": "legend"],
                text: "Rows leaving the outbox (published or dead-lettered), from PostgreSQL's statistics: now \(Int(latest.perSecond.rounded())) msg/s, peak \(Int(peak.rounded())), average \(Int(average.rounded())) over the \(shown.count) samples shown.")
    }
}
