import Foundation
import Hummingbird

/// Who may use the console, checked before any route runs.
///
/// - **Token** (when configured): a request carries `Authorization: Bearer <token>` (scripts), or
///   the session cookie the login page sets after the token was typed in (browsers). The cookie
///   holds a random session secret of this process, never the token; it is `HttpOnly` and
///   `SameSite=Strict`, so another site's page cannot send it.
/// - **Host**: without a token the console listens on loopback only, and answers only requests
///   whose `Host` names loopback, so a web page whose DNS name is made to point at 127.0.0.1 (DNS
///   rebinding) cannot read the pages and their CSRF token.
/// - **CSRF**: every POST but the login carries this process's CSRF token (a hidden form field, or
///   the `X-CSRF-Token` header), which only a page of the console itself can read.
struct ConsoleAccess: Sendable {
    static let sessionCookie = "outbox_console_session"

    let token: String?
    let csrfToken: String
    let sessionSecret: String

    init(token: String?) {
        self.token = token
        csrfToken = Self.randomHex(bytes: 32)
        sessionSecret = Self.randomHex(bytes: 32)
    }

    static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }

    /// Compares without an early exit, so response times tell nothing about the secret.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }

    func isAuthenticated(_ request: Request) -> Bool {
        guard let token else { return true }
        if let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer ") {
            return Self.constantTimeEqual(String(authorization.dropFirst("Bearer ".count)), token)
        }
        if let session = request.cookies[Self.sessionCookie]?.value {
            return Self.constantTimeEqual(session, sessionSecret)
        }
        return false
    }

    func checksToken(_ candidate: String) -> Bool {
        guard let token else { return true }
        return Self.constantTimeEqual(candidate, token)
    }

    func hasCSRFToken(_ request: Request, form: FormFields?) -> Bool {
        if let header = request.headers[.init("X-CSRF-Token")!] { return Self.constantTimeEqual(header, csrfToken) }
        if let field = form?.first("csrf") { return Self.constantTimeEqual(field, csrfToken) }
        return false
    }

    /// Without a token, only requests addressed to loopback (see the type's documentation).
    func acceptsHost(_ request: Request) -> Bool {
        guard token == nil else { return true }
        guard let host = request.head.authority else { return false }
        let name: Substring
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            name = host[host.index(after: host.startIndex)..<close]
        } else {
            name = host.split(separator: ":", maxSplits: 1).first ?? ""
        }
        return ConsoleSettings.isLoopback(host: String(name))
    }

    var sessionCookieHeader: String {
        "\(Self.sessionCookie)=\(sessionSecret); Path=/; HttpOnly; SameSite=Strict"
    }
}

/// The headers every answer carries: a Content-Security-Policy that allows only the console's own
/// script and style (no inline script, so injected markup could not run any), no framing, no
/// sniffing, no caching, no referrer.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    static var contentSecurityPolicy: String {
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        response.headers[.init("X-Content-Type-Options")!] = "nosniff"
        response.headers[.init("X-Frame-Options")!] = "DENY"
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        response.headers[.cacheControl] = "no-store"
        return response
    }
}

/// Refuses what ``ConsoleAccess`` does not allow, before any route runs.
struct AccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let access: ConsoleAccess

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard access.acceptsHost(request) else {
            return ConsolePages.plain("This console answers only requests addressed to 127.0.0.1, localhost or [::1].\n", status: .misdirectedRequest)
        }
        let path = request.uri.path
        if path == "/login" || path.hasPrefix("/assets/") { return try await next(request, context) }
        guard access.isAuthenticated(request) else {
            if path.hasPrefix("/api/") {
                return ConsolePages.plain("a token is required: send Authorization: Bearer <token>\n", status: .unauthorized)
            }
            return Response(status: .seeOther, headers: [.location: "/login"])
        }
        return try await next(request, context)
    }
}
