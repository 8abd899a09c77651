import Foundation

/// A line chart as inline SVG: enough for time series and percentile curves in a report that must
/// open anywhere without scripts or network (no JavaScript, no external fonts or styles).
struct SVGChart {
    struct Series {
        var name: String
        var color: String
        var points: [(x: Double, y: Double)]
        /// Drawn as a step line (values held until the next sample), for per-interval rates.
        var steps = false
    }

    /// A vertical marker on the x axis, e.g. a fault injected at that time.
    struct Marker {
        var x: Double
        var label: String
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series]
    var markers: [Marker] = []
    /// Percentile curves use a log-like x axis: x is given as -log10(1 - p/100) by the caller.
    var xTickLabels: [(x: Double, label: String)]? = nil
    var width = 860.0
    var height = 300.0

    private let left = 70.0, right = 20.0, top = 52.0, bottom = 46.0

    var svg: String {
        let xs = series.flatMap { $0.points.map(\.x) } + markers.map(\.x)
        let ys = series.flatMap { $0.points.map(\.y) }
        guard let minX = xs.min(), let maxX0 = xs.max(), let maxY0 = ys.max() else {
            return "<p><em>\(escape(title)): no data</em></p>"
        }
        let maxX = maxX0 > minX ? maxX0 : minX + 1
        let yStep = Self.niceStep(max(maxY0, 1e-9) / 4)
        let maxY = (max(maxY0, 1e-9) / yStep).rounded(.up) * yStep
        let plotW = width - left - right, plotH = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - minX) / (maxX - minX) * plotW }
        func py(_ y: Double) -> Double { top + plotH - y / maxY * plotH }

        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(f(width)) \(f(height))" width="\(f(width))" height="\(f(height))" role="img" aria-label="\(escape(title))">
            <text x="\(f(left))" y="20" class="title">\(escape(title))</text>

            """
        // Grid and y ticks: steps of 1, 2 or 5 × 10^n.
        var value = 0.0
        while value <= maxY * 1.0001 {
            let y = py(value)
            out += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(width - right))\" y2=\"\(f(y))\" class=\"grid\"/>"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" class=\"tick\" text-anchor=\"end\">\(Self.short(value))</text>\n"
            value += yStep
        }
        // X ticks, at round values.
        let ticks = xTickLabels ?? {
            let step = Self.niceStep((maxX - minX) / 6)
            return stride(from: (minX / step).rounded(.up) * step, through: maxX, by: step).map { ($0, Self.short($0)) }
        }()
        for tick in ticks {
            out += "<text x=\"\(f(px(tick.x)))\" y=\"\(f(height - bottom + 16))\" class=\"tick\" text-anchor=\"middle\">\(escape(tick.label))</text>"
        }
        out += """

            <line x1="\(f(left))" y1="\(f(top + plotH))" x2="\(f(width - right))" y2="\(f(top + plotH))" class="axis"/>
            <line x1="\(f(left))" y1="\(f(top))" x2="\(f(left))" y2="\(f(top + plotH))" class="axis"/>
            <text x="\(f(left + plotW / 2))" y="\(f(height - 8))" class="label" text-anchor="middle">\(escape(xLabel))</text>
            <text x="14" y="\(f(top + plotH / 2))" class="label" text-anchor="middle" transform="rotate(-90 14 \(f(top + plotH / 2)))">\(escape(yLabel))</text>

            """
        for (index, marker) in markers.enumerated() {
            let x = px(marker.x)
            // Alternate label rows so markers close together stay readable.
            let labelY = top + 10 + Double(index % 3) * 11
            out += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(top + plotH))\" class=\"marker\"/>"
            out += "<text x=\"\(f(x + 3))\" y=\"\(f(labelY))\" class=\"marker-label\">\(escape(marker.label))</text>\n"
        }
        for s in series where !s.points.isEmpty {
            var path = ""
            for (i, p) in s.points.enumerated() {
                if i == 0 {
                    path += "M\(f(px(p.x))),\(f(py(p.y)))"
                } else if s.steps {
                    path += " H\(f(px(p.x))) V\(f(py(p.y)))"
                } else {
                    path += " L\(f(px(p.x))),\(f(py(p.y)))"
                }
            }
            out += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\"><title>\(escape(s.name))</title></path>\n"
        }
        // Legend, between the title and the plot.
        var lx = left
        for s in series {
            out += "<rect x=\"\(f(lx))\" y=\"\(f(top - 14))\" width=\"12\" height=\"3\" fill=\"\(s.color)\"/>"
            out += "<text x=\"\(f(lx + 16))\" y=\"\(f(top - 9))\" class=\"legend\">\(escape(s.name))</text>"
            lx += 24 + Double(s.name.count) * 6.5
        }
        out += "</svg>"
        return out
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    /// 1, 2 or 5 × 10^n at or above `value`: a round step for ticks.
    static func niceStep(_ value: Double) -> Double {
        guard value > 0 else { return 1 }
        let magnitude = pow(10, floor(log10(value)))
        for step in [1.0, 2.0, 5.0, 10.0] where step * magnitude >= value { return step * magnitude }
        return 10 * magnitude
    }

    static func short(_ value: Double) -> String {
        switch abs(value) {
        case 1_000_000...: String(format: "%.1fM", value / 1_000_000)
        case 10_000...: String(format: "%.0fk", value / 1000)
        case 1000...: value.truncatingRemainder(dividingBy: 1000) == 0 ? String(format: "%.0fk", value / 1000) : String(format: "%.1fk", value / 1000)
        case 10...: String(format: "%.0f", value)
        case 1...: String(format: "%.1f", value)
        case 0: "0"
        default: String(format: "%.2f", value)
        }
    }

    private func f(_ value: Double) -> String { String(format: "%.1f", value) }
}

/// Text for SVG and HTML, with the five markup characters escaped.
func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        .replacingOccurrences(of: "'", with: "&#39;")
}
