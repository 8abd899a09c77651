import Logging
import NIOCore
import NIOSSL
import PostgresNIO

/// One direct connection attempt, made before a command or a relay starts its pool.
///
/// `PostgresClient` retries connecting in the background and a query simply waits for a
/// connection, so an unreachable database or a wrong password would make a command hang instead of
/// saying what is wrong. The probe fails fast with the driver's reason.
public enum DatabaseProbe {
    public static func check(_ url: DatabaseURL, timeout: Duration = .seconds(5), logger: Logger) async throws {
        var configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.username, password: url.password, database: url.database,
            tls: try tls(for: url.tlsMode))
        configuration.options.connectTimeout = .milliseconds(timeout.milliseconds)
        var quiet = logger
        quiet.logLevel = .critical
        let connection = try await PostgresConnection.connect(
            configuration: configuration, id: 0, logger: quiet)
        try await connection.close()
    }

    private static func tls(for mode: DatabaseURL.TLSMode) throws -> PostgresConnection.Configuration.TLS {
        switch mode {
        case .disable:
            return .disable
        case .prefer, .require:
            var context = TLSConfiguration.makeClientConfiguration()
            context.certificateVerification = .none
            let ssl = try NIOSSLContext(configuration: context)
            return mode == .prefer ? .prefer(ssl) : .require(ssl)
        case .verifyFull:
            return .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
    }
}
