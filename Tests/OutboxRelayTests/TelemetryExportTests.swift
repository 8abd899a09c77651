import Logging
import OutboxRelay
import Synchronization
import Testing

/// When `OTEL_*` switches the OTLP export on, where it goes, and the values refused before the
/// exporter could end the process or fail without saying why.
struct TelemetryExportTests {
    @Test func nothingIsExportedUnlessAsked() throws {
        #expect(try TelemetryExport.from(environment: [:]) == nil)
        #expect(try TelemetryExport.from(environment: ["OTEL_SERVICE_NAME": "relay", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"]) == nil)
        #expect(try TelemetryExport.from(environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": ""]) == nil, "empty is unset")
        #expect(try TelemetryExport.from(environment: ["OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"]) == nil)
        #expect(try TelemetryExport.from(environment: ["OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"]) == nil)
        #expect(try TelemetryExport.from(environment: ["OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"]) == nil)
    }

    @Test func anEndpointSwitchesTracesOnAndMetricsStayWithPrometheus() throws {
        let export = try #require(try TelemetryExport.from(environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"]))
        #expect(export.traces == .init(endpoint: "http://collector:4318/v1/traces", format: .protobuf))
        #expect(export.metrics == nil)

        let slash = try #require(try TelemetryExport.from(environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector/otlp/"]))
        #expect(slash.traces?.endpoint == "https://collector/otlp/v1/traces")
        let own = try #require(try TelemetryExport.from(environment: [
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://shared:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9999/custom",
        ]))
        #expect(own.traces?.endpoint == "http://traces:9999/custom", "a signal's own endpoint is used as given")
    }

    @Test func theExporterVariablesChooseTheSignals() throws {
        let defaults = try #require(try TelemetryExport.from(environment: ["OTEL_TRACES_EXPORTER": "otlp"]))
        #expect(defaults.traces?.endpoint == "http://localhost:4318/v1/traces")
        let both = try #require(try TelemetryExport.from(environment: [
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/json",
        ]))
        #expect(both.traces?.format == .protobuf)
        #expect(both.metrics == .init(endpoint: "http://c:4318/v1/metrics", format: .json))
        let metricsOnly = try #require(try TelemetryExport.from(environment: [
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "otlp",
        ]))
        #expect(metricsOnly.traces == nil && metricsOnly.metrics != nil)
    }

    @Test func whatCannotBeExportedIsRefusedWithWhatToSet() throws {
        func problem(_ environment: [String: String]) -> TelemetryExportError? {
            do {
                _ = try TelemetryExport.from(environment: environment)
                return nil
            } catch {
                return error
            }
        }
        let grpc = try #require(problem(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"]))
        #expect(grpc.variable == "OTEL_EXPORTER_OTLP_PROTOCOL")
        #expect(grpc.description.contains("http/protobuf") && grpc.description.contains("4318"), "\(grpc)")
        let traceGRPC = try #require(problem(["OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"]))
        #expect(traceGRPC.variable == "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        #expect(problem(["OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"])?.variable == "OTEL_EXPORTER_OTLP_PROTOCOL")

        let zipkin = try #require(problem(["OTEL_TRACES_EXPORTER": "zipkin"]))
        #expect(zipkin.variable == "OTEL_TRACES_EXPORTER" && zipkin.description.contains("otlp"))
        #expect(problem(["OTEL_TRACES_EXPORTER": "otlp,console"])?.variable == "OTEL_TRACES_EXPORTER")
        #expect(problem(["OTEL_METRICS_EXPORTER": "prometheus"])?.variable == "OTEL_METRICS_EXPORTER")
        #expect(problem(["OTEL_SDK_DISABLED": "yes"])?.variable == "OTEL_SDK_DISABLED")

        let scheme = try #require(problem(["OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"]))
        #expect(scheme.variable == "OTEL_EXPORTER_OTLP_ENDPOINT" && scheme.description.contains("http://"), "\(scheme)")
        let password = try #require(problem(["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://relay:hunter2@collector/v1/traces"]))
        #expect(password.variable == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" && password.description.contains("OTEL_EXPORTER_OTLP_HEADERS"))
        #expect(!password.description.contains("hunter2"), "the password is never echoed: \(password)")
    }

    /// swift-otel logs each variable it applies with its value; a headers variable holds the
    /// collector's credentials.
    @Test func theExportersDiagnosticsNeverCarryHeaderValues() {
        let lines = Lines()
        var logger = Logger(label: "otel") { _ in
            ExporterDiagnosticsLogHandler(wrapping: JSONLogHandler(label: "otel") { lines.append($0) })
        }
        logger.logLevel = .debug
        logger[metadataKey: "environment_key"] = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
        logger[metadataKey: "environment_value"] = "authorization=Bearer hunter2"
        logger[metadataKey: "new_value"] = #"[("authorization", "Bearer hunter2")]"#
        logger.info("Configuration updated from environment")
        logger[metadataKey: "environment_key"] = "OTEL_SERVICE_NAME"
        logger[metadataKey: "environment_value"] = "orders-relay"
        logger[metadataKey: "new_value"] = "orders-relay"
        logger.warning("Failed to extract span context.", metadata: ["carrier": "[\"x-api-key\": \"hunter2\"]"])

        let written = lines.all
        #expect(written.count == 2)
        #expect(!written.joined().contains("hunter2"), "\(written)")
        #expect(written.first?.contains("[redacted]") == true)
        #expect(written.last?.contains("orders-relay") == true, "other values pass: \(written)")
    }

    final class Lines: Sendable {
        private let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }
}
