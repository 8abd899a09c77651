import Foundation
import OutboxTestSupport

/// A W3C WebDriver client for Debian's chromedriver and headless Chromium, over plain HTTP with
/// JSON: the browser tests need a real browser (does the page run injected script? does the
/// lane grid render?), and this is the whole protocol they use, without Selenium.
final class WebDriver: @unchecked Sendable {
    static let chromedriver = "/usr/bin/chromedriver"
    static let chromium = "/usr/bin/chromium"
    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    struct Failure: Error, CustomStringConvertible { var description: String }

    let port: Int
    let process: ChildProcess
    let session: String

    /// Starts chromedriver and one headless session; `stop()` ends both.
    static func start() async throws -> WebDriver {
        guard FileManager.default.isExecutableFile(atPath: chromedriver), FileManager.default.isExecutableFile(atPath: chromium) else {
            throw Failure(description: "the browser tests need Debian's chromium and chromium-driver: run scripts/bootstrap --browser (scripts/test does)")
        }
        let port = try HTTPGet.freePort()
        let process = try ChildProcess(chromedriver, ["--port=\(port)"], environment: ProcessInfo.processInfo.environment)
        let deadline = ContinuousClock.now + .seconds(20)
        while (try? HTTPGet.get(port: port, path: "/status"))?.status != 200 {
            guard ContinuousClock.now < deadline else { process.kill(); throw Failure(description: "chromedriver did not answer on port \(port)") }
            try await Task.sleep(for: .milliseconds(100))
        }
        let capabilities: [String: Any] = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": [
                        "binary": chromium,
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1366,900", "--lang=en-US"],
                    ],
                ]
            ]
        ]
        let answer = try call(port: port, "POST", "/session", capabilities, timeout: .seconds(60))
        guard let value = answer as? [String: Any], let session = value["sessionId"] as? String else {
            process.kill()
            throw Failure(description: "no WebDriver session: \(answer)")
        }
        return WebDriver(port: port, process: process, session: session)
    }

    private init(port: Int, process: ChildProcess, session: String) {
        self.port = port
        self.process = process
        self.session = session
    }

    func stop() {
        _ = try? Self.call(port: port, "DELETE", "/session/\(session)", nil)
        process.kill()
    }

    @discardableResult
    static func call(port: Int, _ method: String, _ path: String, _ body: Any?, timeout: Duration = .seconds(30)) throws -> Any {
        let json = try body.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        let response = try HTTPGet.request(port: port, method: method, path: path, json: json ?? (method == "POST" ? "{}" : nil), timeout: timeout)
        let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8), options: [.fragmentsAllowed]) as? [String: Any]
        guard response.status == 200 else {
            throw Failure(description: "\(method) \(path): HTTP \(response.status) \(String(response.body.prefix(400)))")
        }
        return object?["value"] ?? NSNull()
    }

    @discardableResult
    func call(_ method: String, _ path: String, _ body: Any? = nil) throws -> Any {
        try Self.call(port: port, method, "/session/\(session)\(path)", body)
    }

    func open(_ url: String) throws { try call("POST", "/url", ["url": url]) }
    var currentURL: String { get throws { try call("GET", "/url") as? String ?? "" } }
    var title: String { get throws { try call("GET", "/title") as? String ?? "" } }

    func elements(_ css: String) throws -> [String] {
        (try call("POST", "/elements", ["using": "css selector", "value": css]) as? [[String: Any]] ?? []).compactMap { $0[Self.elementKey] as? String }
    }

    func element(_ css: String) throws -> String {
        guard let first = try elements(css).first else { throw Failure(description: "no element matches \(css) on \((try? currentURL) ?? "?")") }
        return first
    }

    func text(_ element: String) throws -> String { try call("GET", "/element/\(element)/text") as? String ?? "" }
    func click(_ element: String) throws { try call("POST", "/element/\(element)/click", [String: Any]()) }
    func type(_ element: String, _ text: String) throws { try call("POST", "/element/\(element)/value", ["text": text]) }

    // MARK: Keyboard

    static let tabKey = "\u{E004}", enterKey = "\u{E007}", arrowDownKey = "\u{E015}"

    /// Presses and releases each character of `keys` in turn, as a keyboard would (WebDriver key
    /// actions go to whatever has the focus): letters type, `tabKey` moves the focus.
    func press(_ keys: String) throws {
        let actions = keys.unicodeScalars.flatMap { key in
            [["type": "keyDown", "value": String(key)], ["type": "keyUp", "value": String(key)]]
        }
        try call("POST", "/actions", ["actions": [["type": "key", "id": "keyboard", "actions": actions]]])
    }

    /// Whether the focused element matches `css`.
    func focused(_ css: String) throws -> Bool {
        try run("return document.activeElement !== null && document.activeElement.matches(\(Self.jsString(css)))") as? Bool ?? false
    }

    /// Presses Tab until the focused element matches `css`, at most `limit` times, noting every
    /// element the focus stopped at whose focus is not visible (no outline). Returns those.
    @discardableResult
    func tab(to css: String, limit: Int = 60) throws -> [String] {
        var invisible: [String] = []
        for _ in 0..<limit {
            try press(Self.tabKey)
            let stop = try run(
                """
                var e = document.activeElement; if (!e || e === document.body) { return ''; }
                var s = getComputedStyle(e);
                return (s.outlineStyle === 'none' || s.outlineWidth === '0px') ? e.outerHTML.slice(0, 120) : '';
                """) as? String ?? ""
            if !stop.isEmpty { invisible.append(stop) }
            if try focused(css) { return invisible }
        }
        throw Failure(description: "\(limit) presses of Tab did not reach \(css) on \((try? currentURL) ?? "?")")
    }

    static func jsString(_ text: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: text, options: [.fragmentsAllowed]), as: UTF8.self)
    }

    /// Runs `script` in the page (a function body; `return` gives the answer).
    func run(_ script: String) throws -> Any { try call("POST", "/execute/sync", ["script": script, "args": [Any]()]) }

    /// Saves a PNG of the page (the viewport) to `path`.
    func screenshot(to path: String) throws {
        guard let base64 = try call("GET", "/screenshot") as? String, let data = Data(base64Encoded: base64) else {
            throw Failure(description: "no screenshot")
        }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// Waits until `condition` holds (pages refresh themselves; forms navigate).
    func wait(_ what: String, timeout: Duration = .seconds(20), _ condition: () throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !((try? condition()) ?? false) {
            guard ContinuousClock.now < deadline else { throw Failure(description: "timed out waiting until \(what) on \((try? currentURL) ?? "?")") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
