import Foundation
import NIOSSL
import PostgresNIO

/// A `postgres://user:password@host:port/database?sslmode=...` URL, parsed and checked.
///
/// `sslmode` follows libpq: `disable`, `prefer` (the default: TLS when the server offers it) and
/// `require`/`verify-full` (TLS or fail, with certificate verification). The password is kept for
/// connecting but never appears in `description`, logs or errors.
public struct DatabaseURL: Sendable, CustomStringConvertible {
    public enum TLSMode: String, Sendable { case disable, prefer, require, verifyFull = "verify-full" }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tlsMode: TLSMode

    public init(_ text: String) throws(ConfigurationError) {
        func fail(_ problem: String) -> ConfigurationError {
            ConfigurationError(setting: "OUTBOX_DATABASE_URL", problem: problem)
        }
        let example = "use postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require|verify-full]"
        guard let components = URLComponents(string: text), let scheme = components.scheme else {
            throw fail("not a URL; \(example)")
        }
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw fail("scheme must be postgres:// or postgresql://, got \(scheme)://; \(example)")
        }
        guard let host = components.host, !host.isEmpty else { throw fail("no host; \(example)") }
        guard let user = components.user, !user.isEmpty else { throw fail("no user name; \(example)") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw fail("no database name; \(example)") }
        var tlsMode = TLSMode.prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value, let mode = TLSMode(rawValue: value) else {
                    throw fail("sslmode must be disable, prefer, require or verify-full")
                }
                tlsMode = mode
            default:
                throw fail("unsupported parameter \(item.name); only sslmode is understood")
            }
        }
        self.host = host
        self.port = components.port ?? 5432
        self.username = user.removingPercentEncoding ?? user
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 }
        self.database = database.removingPercentEncoding ?? database
        self.tlsMode = tlsMode
    }

    /// The URL with the password masked.
    public var description: String {
        let credentials = password == nil ? username : "\(username):***"
        return "postgres://\(credentials)@\(host):\(port)/\(database)?sslmode=\(tlsMode.rawValue)"
    }

    public func clientConfiguration() -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch tlsMode {
        case .disable:
            tls = .disable
        case .prefer:
            var context = TLSConfiguration.makeClientConfiguration()
            context.certificateVerification = .none
            tls = .prefer(context)
        case .require:
            var context = TLSConfiguration.makeClientConfiguration()
            context.certificateVerification = .none
            tls = .require(context)
        case .verifyFull:
            tls = .require(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.maximumConnections = 8
        return configuration
    }
}
