import Hummingbird
import Logging
import ServiceLifecycle

/// The relay's operational endpoints, as a ServiceLifecycle service: `/healthz`, `/readyz` and
/// `/metrics`.
///
/// Loopback by default: the endpoints carry no secrets but reveal topic names and fleet state, and
/// a relay has no other reason to accept connections. List it *before* the relay in the
/// `ServiceGroup` (shutdown runs in reverse), so `/readyz` keeps answering "shutting down" and
/// `/metrics` keeps its last values until the relay has settled its final batch.
///
/// The metrics text comes from a closure so the library stays backend-neutral: the `run` command
/// passes its Prometheus registry's exposition; an embedder may pass anything.
public struct RelayHTTPServer: Service {
    let address: HTTPAddress
    let health: RelayHealth
    let metricsText: @Sendable () -> String
    let databaseStaleAfter: Duration
    let logger: Logger

    public init(
        address: HTTPAddress, health: RelayHealth, databaseStaleAfter: Duration = Readiness.defaultDatabaseStaleAfter,
        logger: Logger, metricsText: @escaping @Sendable () -> String
    ) {
        self.address = address
        self.health = health
        self.metricsText = metricsText
        self.databaseStaleAfter = databaseStaleAfter
        self.logger = logger
    }

    /// Serves until graceful shutdown.
    ///
    /// A server that cannot start (typically: the port is taken, e.g. by another relay on the same
    /// host with the default address) is logged as an error and the relay keeps publishing without
    /// endpoints: moving messages is the relay's job, its endpoints only observe it, and an
    /// orchestrator notices the missing `/readyz` anyway.
    public func run() async throws {
        let application = Application(
            router: makeRouter(),
            configuration: ApplicationConfiguration(address: .hostname(address.host, port: address.port), serverName: "outbox-relay"),
            logger: logger)
        do {
            try await application.run()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            logger.error(
                "HTTP endpoints unavailable; the relay runs on without /healthz, /readyz and /metrics",
                metadata: [
                    "address": "\(address)", "error": "\(error)",
                    "fix": "give each relay on this host its own OUTBOX_HTTP_ADDRESS (--http-address), or off",
                ])
            // Returning would end the whole ServiceGroup; stay until the relay stops.
            try await gracefulShutdown()
        }
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        let health = self.health
        let staleAfter = databaseStaleAfter
        let metricsText = self.metricsText
        // Liveness: the process answers and its batch loop is not wedged. Deliberately independent
        // of the database and the broker, so an outage makes the relay not-ready (and wait) rather
        // than restarted; only a loop the watchdog found silent past its limit fails it.
        router.get("healthz") { _, _ in
            if let silence = health.snapshot.stalledFor {
                return Self.text(
                    "stalled: the batch loop made no progress for \(Readiness.wholeSeconds(silence)); restart this relay\n",
                    status: .serviceUnavailable)
            }
            return Self.text("ok\n", status: .ok)
        }
        router.get("readyz") { _, _ in
            let readiness = health.readiness(databaseStaleAfter: staleAfter)
            return Self.text(readiness.message + "\n", status: readiness.isReady ? .ok : .serviceUnavailable)
        }
        router.get("metrics") { _, _ in
            var response = Self.text(metricsText(), status: .ok)
            response.headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return response
        }
        return router
    }

    static func text(_ body: String, status: HTTPResponse.Status) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}
