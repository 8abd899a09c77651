import Foundation
import Hummingbird
import OutboxRelay

/// The console's pages, rendered on the server from escaped values (``HTML``). Plain HTML forms
/// and links, so everything works with the keyboard and without script; the one script
/// (`/assets/console.js`) only refreshes the fleet page in place.
enum ConsolePages {
    struct Chrome {
        var schema: String
        var readOnly: Bool
        var csrfToken: String
    }

    static func page(_ title: String, _ chrome: Chrome, active: String, body: HTML, refreshMilliseconds: Int? = nil) -> Response {
        var html = HTML(trusted: "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")
        html.append(trusted: "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        html.append(HTML.element("title", text: "\(title) · outbox-relay console · \(chrome.schema)"))
        html.append(trusted: "<link rel=\"stylesheet\" href=\"/assets/console.css\"><script src=\"/assets/console.js\" defer></script></head><body>")
        // The first tab stop: past the header's links straight to the page's own content.
        html.append(HTML.element("a", ["class": "skip", "href": "#main"], text: "Skip to the content"))
        var nav = HTML()
        for (path, label) in [("/", "Fleet"), ("/dead-letters", "Dead letters"), ("/dead-letters/stats", "Stats"), ("/audit", "Audit trail")] {
            nav.append(HTML.element("a", path == active ? ["href": path, "aria-current": "page"] : ["href": path], text: label))
        }
        var header = HTML.element("strong", text: "outbox-relay") + HTML.element("span", ["class": "schema"], text: "schema \(chrome.schema)")
        header.append(HTML.element("nav", [:], nav))
        if chrome.readOnly { header.append(HTML.element("span", ["class": "badge"], text: "read-only")) }
        html.append(HTML.element("header", [:], header))
        var mainAttributes: [(String, String)] = [("id", "main"), ("tabindex", "-1")]
        if let refreshMilliseconds { mainAttributes += [("data-refresh", "\(refreshMilliseconds)"), ("data-fragment", "/fleet/fragment")] }
        html.append(trusted: "<main\(mainAttributes.map { " \($0.0)=\"\(HTML.escape($0.1))\"" }.joined())>")
        html.append(body)
        html.append(trusted: "</main></body></html>")
        return htmlResponse(html)
    }

    static func htmlResponse(_ html: HTML, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: html.markup)))
    }

    static func plain(_ text: String, status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func errorPage(_ message: String, _ chrome: Chrome, status: HTTPResponse.Status) -> Response {
        var response = page(
            "Error", chrome, active: "",
            body: HTML.element("h1", text: "Nothing was changed") + HTML.element("p", ["class": "error", "role": "alert"], text: message))
        response.status = status
        return response
    }

    // MARK: Formatting

    static func age(_ seconds: Double) -> String {
        let s = max(seconds, 0)
        if s < 1 { return String(format: "%.1f s", s) }
        if s < 120 { return "\(Int(s)) s" }
        if s < 7200 { return "\(Int(s / 60)) min" }
        if s < 172_800 { return String(format: "%.1f h", s / 3600) }
        return String(format: "%.1f d", s / 86_400)
    }

    static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    static func table(_ headers: [String], _ rows: [[HTML]], caption: String? = nil) -> HTML {
        var html = HTML(trusted: "<table>")
        if let caption { html.append(HTML.element("caption", text: caption)) }
        html.append(trusted: "<thead><tr>")
        for header in headers { html.append(HTML.element("th", ["scope": "col"], text: header)) }
        html.append(trusted: "</tr></thead><tbody>")
        for row in rows { html.append(HTML.element("tr", [:], row.map { HTML.element("td", [:], $0) }.joined())) }
        html.append(trusted: "</tbody></table>")
        return html
    }

    static func hiddenFields(_ fields: FormFields) -> HTML {
        fields.pairs.map { HTML(trusted: "<input type=\"hidden\" name=\"\(HTML.escape($0.name))\" value=\"\(HTML.escape($0.value))\">") }.joined()
    }

    static func input(_ name: String, label: String, value: String?, placeholder: String = "", type: String = "text", required: Bool = false) -> HTML {
        HTML(
            trusted: "<label>\(HTML.escape(label)) <input type=\"\(type)\" name=\"\(HTML.escape(name))\" value=\"\(HTML.escape(value ?? ""))\" placeholder=\"\(HTML.escape(placeholder))\"\(required ? " required" : "")></label>")
    }

    static func select(_ name: String, label: String, options: [String], selected: String?) -> HTML {
        var html = HTML(trusted: "<label>\(HTML.escape(label)) <select name=\"\(HTML.escape(name))\">")
        for option in options {
            html.append(trusted: "<option value=\"\(HTML.escape(option))\"\(option == (selected ?? "") ? " selected" : "")>\(HTML.escape(option.isEmpty ? "any" : option))</option>")
        }
        html.append(trusted: "</select></label>")
        return html
    }
}
