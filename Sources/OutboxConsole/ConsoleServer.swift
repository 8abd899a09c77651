import Foundation
import Hummingbird
import Logging
import Outbox
import OutboxRelay
import PostgresNIO
import ServiceLifecycle

/// `outbox-relay console`: the fleet and the dead letters in a browser, and the same as JSON under
/// `/api/`. A ServiceLifecycle service that serves until graceful shutdown and samples the
/// throughput at every refresh interval meanwhile.
///
/// Its own process with the admin role (replay and purge write the outbox and the dead-letter
/// table), so relays keep their least-privilege role. Replay and purge call `DeadLetterStore`,
/// exactly as the CLI does.
public struct ConsoleServer: Service {
    let client: PostgresClient
    let schema: SchemaName
    let settings: ConsoleSettings
    let logger: Logger
    let access: ConsoleAccess
    let throughput = ThroughputHistory()

    public init(client: PostgresClient, schema: SchemaName, settings: ConsoleSettings, logger: Logger) {
        self.client = client
        self.schema = schema
        self.settings = settings
        self.logger = logger
        access = ConsoleAccess(token: settings.token)
    }

    public func run() async throws {
        let application = Application(
            router: makeRouter(),
            configuration: ApplicationConfiguration(
                address: .hostname(settings.address.host, port: settings.address.port), serverName: "outbox-relay-console"),
            logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await application.run() }
            group.addTask { await sampleThroughput() }
            // The server ends the group: on graceful shutdown, or when it cannot listen.
            try await group.next()
            group.cancelAll()
        }
    }

    /// Reads the rows-left-the-outbox counter at every refresh interval until cancelled; a failed
    /// reading (the database restarting) is skipped, not fatal.
    func sampleThroughput() async {
        while !Task.isCancelled {
            do {
                try await sampleOnce()
                try await Task.sleep(for: settings.refreshInterval)
            } catch is CancellationError {
                return
            } catch {
                logger.debug("throughput sample failed", metadata: ["error": "\(String(reflecting: error))"])
                try? await Task.sleep(for: settings.refreshInterval)
            }
        }
    }

    func sampleOnce() async throws {
        var binds = PostgresBindings()
        binds.append(schema.rawValue)
        let rows = try await client.query(
            PostgresQuery(
                unsafeSQL: "SELECT \(FleetSnapshot.rowsLeftOutboxSQL)", binds: binds), logger: logger)
        for try await total in rows.decode(Int64.self) { throughput.record(total: total, at: Date()) }
    }

    var store: DeadLetterStore { DeadLetterStore(client: client, schema: schema) }
    var chrome: ConsolePages.Chrome { .init(schema: schema.rawValue, readOnly: settings.readOnly, csrfToken: access.csrfToken) }

    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: SecurityHeadersMiddleware())
        router.add(middleware: AccessMiddleware(access: access))
        addAssetRoutes(router)
        addLoginRoutes(router)
        addPageRoutes(router)
        addAPIRoutes(router)
        return router
    }

    // MARK: Routes

    private func addAssetRoutes(_ router: Router<BasicRequestContext>) {
        router.get("assets/console.css") { _, _ in ConsoleAssets.response(ConsoleAssets.css, type: "text/css; charset=utf-8") }
        router.get("assets/console.js") { _, _ in ConsoleAssets.response(ConsoleAssets.javascript, type: "text/javascript; charset=utf-8") }
    }

    private func addLoginRoutes(_ router: Router<BasicRequestContext>) {
        let chrome = self.chrome, access = self.access
        router.get("login") { _, _ in
            ConsolePages.page("Sign in", chrome, active: "", body: Self.loginForm(failed: false))
        }
        router.post("login") { request, _ in
            let fields = try await Self.form(request)
            guard let candidate = fields.first("token"), access.checksToken(candidate) else {
                var response = ConsolePages.page("Sign in", chrome, active: "", body: Self.loginForm(failed: true))
                response.status = .unauthorized
                return response
            }
            var response = Response(status: .seeOther, headers: [.location: "/"])
            response.headers[.setCookie] = access.sessionCookieHeader
            return response
        }
    }

    static func loginForm(failed: Bool) -> HTML {
        var html = HTML.element("h1", text: "Sign in")
        if failed { html.append(HTML.element("p", ["class": "error", "role": "alert"], text: "That is not the console's token.")) }
        html.append(
            HTML(
                trusted: "<form method=\"post\" action=\"/login\"><label>Console token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required autofocus></label> <button type=\"submit\">Sign in</button></form>"))
        return html
    }

    private func addPageRoutes(_ router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in
            try await page("Fleet", active: "/", refresh: true) {
                let fleet = try await FleetSnapshot.read(client: client, schema: schema, leaseTTL: settings.leaseTTL, logger: logger)
                return FleetPage.body(fleet, throughput: throughput.samples)
            }
        }
        router.get("fleet/fragment") { _, _ in
            do {
                let fleet = try await FleetSnapshot.read(client: client, schema: schema, leaseTTL: settings.leaseTTL, logger: logger)
                return ConsolePages.htmlResponse(FleetPage.body(fleet, throughput: throughput.samples))
            } catch {
                return ConsolePages.htmlResponse(
                    HTML.element("p", ["class": "error", "role": "alert"], text: describe(error)), status: status(for: error))
            }
        }
        router.get("dead-letters") { request, _ in
            let fields = Self.query(request)
            return try await page("Dead letters", active: "/dead-letters") {
                let filter = try ConsoleRequests.filter(fields)
                let after = fields.nonEmpty("after").flatMap { Int64($0) } ?? 0
                let (rows, more) = try await store.list(filter, limit: 100, after: after, logger: logger)
                return DeadLetterPages.list(rows, more: more, filter: fields, filter: filter, chrome: chrome)
            }
        }
        router.get("dead-letters/stats") { request, _ in
            let fields = Self.query(request)
            return try await page("Dead-letter stats", active: "/dead-letters/stats") {
                DeadLetterPages.stats(try await store.stats(try ConsoleRequests.filter(fields), logger: logger), fields: fields)
            }
        }
        router.get("dead-letters/:id") { request, context in
            let view = Self.query(request).nonEmpty("view").flatMap(DeadLetterPages.PayloadView.init(rawValue:)) ?? .text
            guard let id = context.parameters.get("id", as: Int64.self) else {
                return ConsolePages.errorPage("not a dead-letter id", chrome, status: .notFound)
            }
            return try await page("Dead letter \(id)", active: "/dead-letters") {
                DeadLetterPages.detail(try await store.show(id: id, logger: logger), view: view)
            }
        }
        router.get("audit") { _, _ in
            try await page("Audit trail", active: "/audit") { DeadLetterPages.audit(try await store.audit(limit: 200, logger: logger)) }
        }
        router.post("dead-letters/replay") { request, _ in
            try await change(request) { fields in
                let request = try ConsoleRequests.replay(fields)
                let result = try await store.replay(request, logger: logger)
                if result.dryRun {
                    return DeadLetterPages.preview(
                        action: "replay", count: result.count, sample: result.wouldReplay, auditID: result.auditID, toTopic: request.toTopic,
                        fields: fields, chrome: chrome)
                }
                logger.notice("console replay", metadata: ["actor": "\(request.actor)", "count": "\(result.count)", "audit": "\(result.auditID)"])
                return DeadLetterPages.replayed(result, toTopic: request.toTopic)
            }
        }
        router.post("dead-letters/purge") { request, _ in
            try await change(request) { fields in
                let request = try ConsoleRequests.purge(fields)
                let result = try await store.purge(request, logger: logger)
                if result.dryRun {
                    return DeadLetterPages.preview(
                        action: "purge", count: result.count, sample: result.wouldPurge, auditID: result.auditID, toTopic: nil, fields: fields,
                        chrome: chrome)
                }
                logger.notice("console purge", metadata: ["actor": "\(request.actor)", "count": "\(result.count)", "audit": "\(result.auditID)"])
                return DeadLetterPages.purged(result)
            }
        }
    }

    private func addAPIRoutes(_ router: Router<BasicRequestContext>) {
        router.get("api/fleet") { _, _ in
            try await json {
                APIFleet(
                    fleet: try await FleetSnapshot.read(client: client, schema: schema, leaseTTL: settings.leaseTTL, logger: logger),
                    throughput: throughput.samples)
            }
        }
        router.get("api/csrf") { _, _ in
            try await json { APICSRFToken(csrfToken: access.csrfToken) }
        }
        router.get("api/dead-letters") { request, _ in
            let fields = Self.query(request)
            return try await json {
                let limit = min(max(fields.nonEmpty("limit").flatMap { Int($0) } ?? 100, 1), 1000)
                let after = fields.nonEmpty("after").flatMap { Int64($0) } ?? 0
                let (rows, more) = try await store.list(try ConsoleRequests.filter(fields), limit: limit, after: after, logger: logger)
                return APIDeadLetterPage(rows: rows, more: more, next: more ? rows.last?.id : nil)
            }
        }
        router.get("api/dead-letters/stats") { request, _ in
            let fields = Self.query(request)
            return try await json { try await store.stats(try ConsoleRequests.filter(fields), logger: logger) }
        }
        router.get("api/dead-letters/:id") { _, context in
            try await json {
                guard let id = context.parameters.get("id", as: Int64.self) else { throw DeadLetterStoreError.notFound(id: 0, schema: schema.rawValue) }
                return try await store.show(id: id, logger: logger)
            }
        }
        router.get("api/audit") { request, _ in
            let limit = min(max(Self.query(request).nonEmpty("limit").flatMap { Int($0) } ?? 100, 1), 10_000)
            return try await json { try await store.audit(limit: limit, logger: logger) }
        }
        router.post("api/dead-letters/replay") { request, _ in
            try await apiChange(request) { fields in try await store.replay(try ConsoleRequests.replay(fields), logger: logger) }
        }
        router.post("api/dead-letters/purge") { request, _ in
            try await apiChange(request) { fields in try await store.purge(try ConsoleRequests.purge(fields), logger: logger) }
        }
    }

    // MARK: Helpers

    private func page(_ title: String, active: String, refresh: Bool = false, _ body: () async throws -> HTML) async throws -> Response {
        do {
            let html = try await body()
            return ConsolePages.page(
                title, chrome, active: active, body: html,
                refreshMilliseconds: refresh ? Int(settings.refreshInterval.milliseconds) : nil)
        } catch {
            return ConsolePages.errorPage(describe(error), chrome, status: status(for: error))
        }
    }

    /// A POST from a page: refused when read-only or without the CSRF token, before anything runs.
    private func change(_ request: Request, _ body: (FormFields) async throws -> HTML) async throws -> Response {
        let fields = try await Self.form(request)
        guard !settings.readOnly else {
            return ConsolePages.errorPage("this console is read-only (--read-only): replay and purge are off", chrome, status: .forbidden)
        }
        guard access.hasCSRFToken(request, form: fields) else {
            return ConsolePages.errorPage("the form's CSRF token is missing or stale (the console restarted?): reload the page and try again", chrome, status: .forbidden)
        }
        return try await page("Dead letters", active: "/dead-letters") { try await body(fields) }
    }

    private func apiChange<T: Encodable>(_ request: Request, _ body: @escaping (FormFields) async throws -> T) async throws -> Response {
        guard !settings.readOnly else { return ConsolePages.plain("read-only console: replay and purge are off\n", status: .forbidden) }
        guard access.hasCSRFToken(request, form: nil) else {
            return ConsolePages.plain("send the X-CSRF-Token header (GET /api/csrf gives it)\n", status: .forbidden)
        }
        var request = request
        let buffer = try await request.collectBody(upTo: 1 << 20)
        return try await json {
            let decoded = try JSONDecoder().decode(ConsoleRequests.ChangeBody.self, from: Data(buffer.readableBytesView))
            return try await body(decoded.fields)
        }
    }

    private func json<T: Encodable>(_ body: () async throws -> T) async throws -> Response {
        do {
            return Self.jsonResponse(try await body(), status: .ok)
        } catch {
            return Self.jsonResponse(APIFailure(error: describe(error)), status: status(for: error))
        }
    }

    static func jsonResponse<T: Encodable>(_ value: T, status: HTTPResponse.Status) -> Response {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// In words an operator can act on; a database error names its code, never the connection's
    /// URL or password.
    func describe(_ error: any Error) -> String {
        switch error {
        case let error as DeadLetterFilterError: return "\(error)"
        case let error as DeadLetterStoreError: return error.description
        case let error as StatusError: return error.description
        case is DecodingError: return "the request body is not the expected JSON: see docs/operations.md, \"The console\""
        case let error as PSQLError:
            if let message = error.serverInfo?[.message] { return "database error \(error.serverInfo?[.sqlState] ?? "?"): \(message)" }
            return "the database did not answer (\(error.code)): is PostgreSQL up? The page retries at its next refresh"
        default: return "\(error)"
        }
    }

    func status(for error: any Error) -> HTTPResponse.Status {
        switch error {
        case is DeadLetterFilterError, is DecodingError: .badRequest
        case let error as DeadLetterStoreError:
            switch error {
            case .notFound: .notFound
            case .confirmationMismatch: .conflict
            case .schemaTooOld: .serviceUnavailable
            }
        default: .serviceUnavailable
        }
    }

    static func query(_ request: Request) -> FormFields { FormFields(parsing: request.uri.query ?? "") }

    static func form(_ request: Request) async throws -> FormFields {
        var request = request
        let buffer = try await request.collectBody(upTo: 1 << 20)
        return FormFields(parsing: String(buffer: buffer))
    }
}

