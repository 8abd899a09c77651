import ArgumentParser
import Foundation
import Logging
import NIOCore
import OutboxRelay
import PostgresNIO

/// How a command ends when something goes wrong: one line on stderr saying what to do next.
enum CommandFailure {
    static func report(_ message: String) {
        FileHandle.standardError.write(Data("outbox-relay: \(message)\n".utf8))
    }

    /// Reports `error` in words an operator can act on and returns the exit code to throw.
    static func exit(_ error: any Error, settings: RelaySettings) -> ExitCode {
        report(describe(error, settings: settings))
        return ExitCode(1)
    }

    static func describe(_ error: any Error, settings: RelaySettings) -> String {
        if let error = error as? PSQLError {
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed:
                return "cannot reach the database at \(settings.database) (\(error.underlying.map { "\($0)" } ?? "\(error.code)")): is PostgreSQL running? check OUTBOX_DATABASE_URL"
            case .server:
                let message = error.serverInfo?[.message] ?? "server error"
                let state = error.serverInfo?[.sqlState] ?? "?"
                return "database error \(state): \(message) (database \(settings.database))"
            default:
                return "database error \(error.code) (database \(settings.database)): \(String(reflecting: error))"
            }
        }
        return String(describing: error)
    }
}

/// swift-log is bootstrapped once per process; logs go to stderr so stdout stays the command's
/// output (tables, JSON) for scripts. `json` writes one object per line for log shippers.
func bootstrapLogging(level: Logger.Level, format: LogFormat) {
    LoggingSystem.bootstrap { label in
        switch format {
        case .text:
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        case .json:
            var handler = JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// Runs `body` with a connected client pool, and shuts the pool down afterwards.
func withPostgresClient<T: Sendable>(
    _ settings: RelaySettings, logger: Logger, _ body: @Sendable (PostgresClient) async throws -> T
) async throws -> T {
    // The pool's own chatter (e.g. "run() hasn't been called yet" when the first query races the
    // pool's start) is noise for a one-shot command; real failures reach the caller as errors.
    try await DatabaseProbe.check(settings.database, logger: logger)
    var poolLogger = logger
    poolLogger.logLevel = .error
    let client = PostgresClient(configuration: settings.database.clientConfiguration(), backgroundLogger: poolLogger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        return try await body(client)
    }
}
