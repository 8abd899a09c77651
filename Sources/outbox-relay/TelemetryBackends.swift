import Logging
import Metrics
import OTel
import OutboxRelay
import ServiceLifecycle
import Tracing

/// The OTLP exporters of `outbox-relay run`, made with swift-otel when ``TelemetryExport`` says
/// the environment asks for them: a tracer to hand to the relay, a metrics factory to put beside
/// Prometheus, and the service that batches and posts them (it runs first in the service group,
/// so it is stopped last and flushes the spans of the relay's final batch).
///
/// The tracer is passed to the relay, not bootstrapped process-wide: PostgresNIO and the HTTP
/// server would otherwise add a span per query and per scrape to every trace.
struct TelemetryBackends {
    var tracer: (any Tracer)?
    var metrics: (any MetricsFactory)?
    var service: (any Service)?

    static let none = TelemetryBackends(tracer: nil, metrics: nil, service: nil)

    static func make(
        _ export: TelemetryExport?, relayID: String, identity: RelayIdentity, logger: Logger
    ) throws -> TelemetryBackends {
        guard let export else { return .none }
        var configuration = OTel.Configuration.default
        configuration.serviceName = "outbox-relay"  // OTEL_SERVICE_NAME overrides it
        configuration.resourceAttributes = [
            "service.version": identity.version, "service.instance.id": relayID, "host.name": identity.host,
        ]
        configuration.diagnosticLogger = .custom(Self.diagnosticsLogger())
        // Only warnings and errors of the exporter itself, unless OTEL_LOG_LEVEL asks for more.
        configuration.diagnosticLogLevel = .warning
        configuration.logs.enabled = false
        configuration.traces.enabled = export.traces != nil
        configuration.metrics.enabled = export.metrics != nil

        var backends = TelemetryBackends.none
        var services: [any Service] = []
        if export.traces != nil {
            let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
            backends.tracer = tracer
            services.append(service)
        }
        if export.metrics != nil {
            let (factory, service) = try OTel.makeMetricsBackend(configuration: configuration)
            backends.metrics = factory
            services.append(service)
        }
        backends.service = services.count == 1 ? services[0] : ServiceGroup(
            configuration: .init(services: services.map { .init(service: $0) }, logger: logger))
        for (signal, destination) in [("traces", export.traces), ("metrics", export.metrics)] {
            guard let destination else { continue }
            logger.info(
                "exporting over OTLP",
                metadata: ["signal": "\(signal)", "endpoint": "\(destination.endpoint)", "protocol": "\(destination.format.rawValue)"])
        }
        return backends
    }

    /// The process's log handler (text or JSON, its level), with the exporter's secrets removed.
    private static func diagnosticsLogger() -> Logger {
        let base = Logger(label: "otel").handler
        return Logger(label: "otel") { _ in ExporterDiagnosticsLogHandler(wrapping: base) }
    }
}
