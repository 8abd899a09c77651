import Foundation
@_spi(Benchmark) import OutboxRelay

/// report.html: one self-contained page (inline CSS and SVG, no scripts) a person can open from
/// the results folder or attach to a ticket: the figures, the targets, and the charts.
struct HTMLReport {
    let report: RunReport

    var html: String {
        var body = "<h1>outbox-loadtest \(escape(report.mode))</h1>\n"
        body += "<p class=\"meta\"><code>\(escape(report.command))</code><br>\(escape(report.machine)) · started \(escape(ISO8601DateFormatter().string(from: report.startedAt)))</p>\n"
        body += summaryTable()
        body += targetsTable()
        body += ceilingBars()
        for chart in charts { body += "<figure>\(chart.svg)</figure>\n" }
        body += relayTable()
        body += statementTable()
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>outbox-loadtest \(escape(report.mode))</title>
            <style>
            body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 900px; color: #222; }
            h1 { font-size: 22px; } .meta { color: #555; }
            table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ddd; padding: 4px 10px; text-align: left; }
            th { background: #f4f4f4; } .no { color: #b00; font-weight: bold; } .yes { color: #070; }
            figure { margin: 1.5em 0; }
            \(Self.chartStyle)
            .bar { background: #1f77b4; height: 14px; display: inline-block; vertical-align: middle; } .bar.relay { background: #2ca02c; }
            </style></head><body>
            \(body)
            </body></html>

            """
    }

    /// The charts' look, inline in the page and inside every standalone SVG file.
    static let chartStyle = """
        svg { font-family: system-ui, sans-serif; } svg .title { font-size: 14px; font-weight: 600; }
        svg .tick, svg .legend { font-size: 11px; fill: #444; } svg .label { font-size: 12px; fill: #333; }
        svg .grid { stroke: #eee; } svg .axis { stroke: #888; }
        svg .marker { stroke: #b00; stroke-dasharray: 4 3; } svg .marker-label { font-size: 10px; fill: #b00; }
        """

    private func summaryTable() -> String {
        // The Markdown summary's rows, as HTML (one source for both).
        let rows = report.markdown.split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| target") }
        var out = "<table>"
        for row in rows.prefix(while: { !$0.contains(" | wanted |") }) {
            let cells = row.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count == 2, !cells[0].isEmpty || !cells[1].isEmpty else { continue }
            out += "<tr><th>\(inline(cells[0]))</th><td>\(inline(cells[1]))</td></tr>"
        }
        return out + "</table>\n"
    }

    private func targetsTable() -> String {
        guard !report.targets.isEmpty else { return "" }
        var out = "<h2>Targets</h2><table><tr><th>target</th><th>wanted</th><th>measured</th><th>met</th></tr>"
        for t in report.targets {
            out += "<tr><td>\(escape(t.name))</td><td>\(escape(t.target))</td><td>\(escape(t.measured))</td><td class=\"\(t.met ? "yes" : "no")\">\(t.met ? "yes" : "no")</td></tr>"
        }
        return out + "</table>\n"
    }

    private func ceilingBars() -> String {
        guard let c = report.ceiling else { return "" }
        var rows: [(String, Double, Bool)] = [
            ("database ceiling (read + fenced delete)", c.database.rate, false),
            ("produce ceiling, \(c.produceInFlight) batches in flight", c.produceStreaming.rate, false),
            ("produce, one batch at a time", c.produceOneBatch.rate, false),
        ]
        if let d = report.drain {
            rows.append(("relay drain (start → empty)", d.throughput, true))
            rows.append(("relay drain after the first ack", d.steadyThroughput, true))
        }
        let top = rows.map(\.1).max() ?? 1
        var out = "<h2>Against this machine's limits</h2><table><tr><th>what</th><th>msg/s</th><th></th><th>of the limit</th></tr>"
        for (name, rate, relay) in rows {
            out += "<tr><td>\(escape(name))</td><td>\(escape(RunReport.rate(rate)))</td>"
            out += "<td><span class=\"bar\(relay ? " relay" : "")\" style=\"width: \(Int(300 * rate / top))px\"></span></td>"
            out += "<td>\(String(format: "%.0f %%", 100 * rate / c.limit))</td></tr>"
        }
        return out + "</table>\n"
    }

    /// Every chart of the report with a file name, also written as charts/NAME.svg so documents
    /// such as BENCHMARKS.md can show them.
    var charts: [(name: String, svg: String)] {
        var charts: [(name: String, svg: String)] = []
        let markers = report.faults.map { SVGChart.Marker(x: $0.seconds, label: "\($0.action) \($0.relay)") }
        let timeline = report.timeline
        if !timeline.isEmpty {
            var series = [SVGChart.Series(
                name: report.mode == "drain" ? "published/s" : "consumed/s", color: SVGChart.palette[0],
                points: timeline.map { ($0.seconds, $0.publishedPerSecond) }, steps: true)]
            let enqueued = timeline.compactMap { s in s.enqueuedPerSecond.map { (s.seconds, $0) } }
            if !enqueued.isEmpty {
                series.append(.init(name: "enqueued/s", color: SVGChart.palette[2], points: enqueued, steps: true))
            }
            charts.append(("throughput", SVGChart(title: "Throughput over time", xLabel: "seconds", yLabel: "messages / s", series: series, markers: markers).svg))
        }
        let p50 = timeline.compactMap { s in s.p50Milliseconds.map { (s.seconds, $0) } }
        if !p50.isEmpty {
            let p99 = timeline.compactMap { s in s.p99Milliseconds.map { (s.seconds, $0) } }
            let max = timeline.compactMap { s in s.maxMilliseconds.map { (s.seconds, $0) } }
            charts.append(("latency-over-time", SVGChart(
                title: "Commit → consume latency per second", xLabel: "seconds", yLabel: "milliseconds",
                series: [
                    .init(name: "p50", color: SVGChart.palette[0], points: p50),
                    .init(name: "p99", color: SVGChart.palette[3], points: p99),
                    .init(name: "max", color: SVGChart.palette[1], points: max),
                ],
                markers: markers).svg))
        }
        if let curve = report.steady?.percentileCurve, !curve.isEmpty {
            let x = { (p: Double) in -log10(max(1 - p / 100, 1e-6)) }
            charts.append(("latency-percentiles", SVGChart(
                title: "Commit → consume latency by percentile", xLabel: "percentile", yLabel: "milliseconds",
                series: [.init(name: "latency", color: SVGChart.palette[4], points: curve.map { (x($0.percentile), $0.milliseconds) })],
                xTickLabels: [(x(0), "0"), (x(50), "50"), (x(90), "90"), (x(99), "99"), (x(99.9), "99.9"), (x(99.99), "99.99")]
                    .filter { $0.0 <= x(curve.last!.percentile) + 0.01 }).svg))
        }
        let shares = report.relayShares.filter { $0.samples.count > 1 }
        if !shares.isEmpty {
            let series = shares.enumerated().map { index, share in
                SVGChart.Series(
                    name: share.relay, color: SVGChart.palette[index % SVGChart.palette.count],
                    points: Self.rates(share.samples), steps: true)
            }
            charts.append(("relay-share", SVGChart(title: "Per-relay share (published/s, from each relay's /metrics)", xLabel: "seconds", yLabel: "messages / s", series: series, markers: markers).svg))
        }
        return charts
    }

    private func relayTable() -> String {
        guard !report.relayShares.isEmpty else { return "" }
        let totals = report.relayShares.map { ($0.relay, $0.samples.map(\.published).max() ?? 0) }
        let sum = max(totals.map(\.1).reduce(0, +), 1)
        var out = "<h2>Per-relay share</h2><table><tr><th>relay</th><th>published (last process)</th><th>share</th></tr>"
        for (relay, total) in totals {
            out += "<tr><td>\(escape(relay))</td><td>\(Int(total))</td><td><span class=\"bar relay\" style=\"width: \(Int(300 * total / sum))px\"></span> \(String(format: "%.0f %%", 100 * total / sum))</td></tr>"
        }
        return out + "</table>\n"
    }

    private func statementTable() -> String {
        guard !report.databaseStatements.isEmpty else { return "" }
        var out = "<h2>Database time by statement</h2><p>pg_stat_statements, reset when the relays started.</p><table><tr><th>calls</th><th>total ms</th><th>mean ms</th><th>rows</th><th>ms / 1,000 rows</th><th>buffers / 1,000 rows</th><th>statement</th></tr>"
        for s in report.databaseStatements {
            let per = s.perThousandRows
            out += String(
                format: "<tr><td>%d</td><td>%.0f</td><td>%.2f</td><td>%d</td><td>%@</td><td>%@</td><td><code>%@</code></td></tr>", s.calls,
                s.totalMilliseconds, s.meanMilliseconds, s.rows, per.map { String(format: "%.2f", $0.milliseconds) } ?? "–",
                per?.buffers.map { String(format: "%.0f", $0) } ?? "–", escape(s.statement))
        }
        return out + "</table>\n"
    }

    /// Counter samples → rate per interval; a counter that went down (a restarted relay) restarts from 0.
    static func rates(_ samples: [RunReport.RelayShare.Point]) -> [(x: Double, y: Double)] {
        var points: [(x: Double, y: Double)] = []
        for (previous, current) in zip(samples, samples.dropFirst()) where current.seconds > previous.seconds {
            let delta = current.published >= previous.published ? current.published - previous.published : current.published
            points.append((current.seconds, delta / (current.seconds - previous.seconds)))
        }
        return points
    }

    /// Markdown's **bold** and `code` in a table cell, as HTML.
    private func inline(_ text: String) -> String {
        var out = escape(text)
        while let start = out.range(of: "**"), let end = out.range(of: "**", range: start.upperBound..<out.endIndex) {
            out.replaceSubrange(start.lowerBound..<end.upperBound, with: "<b>\(out[start.upperBound..<end.lowerBound])</b>")
        }
        return out
    }
}
