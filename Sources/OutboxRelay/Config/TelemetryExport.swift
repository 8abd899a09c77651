import Foundation

/// Whether `outbox-relay run` exports its spans (and metrics) over OTLP, decided from the standard
/// `OTEL_*` environment variables before the exporter sees them.
///
/// Off unless asked for. The OpenTelemetry default is to export to `localhost:4318`; a relay that
/// starts posting to a port nobody listens on, and logs each failed export, is a surprise on
/// upgrade. So traces go out when `OTEL_TRACES_EXPORTER=otlp`, or when it is unset and an OTLP
/// endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set;
/// `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true` keeps them off. Metrics go out only with
/// `OTEL_METRICS_EXPORTER=otlp`, beside `/metrics`, which stays. Logs are not exported: they are
/// already structured on stderr (`--log-format json`).
///
/// The values the exporter would reject are refused here, with what to set instead: the binary
/// carries swift-otel's OTLP/HTTP exporter only (its gRPC one would add minutes to every clean
/// build), and swift-otel ends the process when asked for gRPC without it.
public struct TelemetryExport: Sendable, Equatable {
    public enum WireFormat: String, Sendable, Equatable {
        case protobuf = "http/protobuf"
        case json = "http/json"
    }

    /// One signal's destination.
    public struct Destination: Sendable, Equatable {
        /// The URL the exporter posts to, as the OTLP specification derives it (a signal's own
        /// endpoint as given; the shared one with `/v1/<signal>` appended), user info removed.
        public var endpoint: String
        public var format: WireFormat

        public init(endpoint: String, format: WireFormat) {
            self.endpoint = endpoint
            self.format = format
        }
    }

    /// Where spans go; nil: no spans are exported.
    public var traces: Destination?
    /// Where metrics go; nil: only `/metrics` serves them.
    public var metrics: Destination?

    public var isEnabled: Bool { traces != nil || metrics != nil }

    /// Reads the decision from `environment` (an empty value counts as unset, as the specification
    /// says). nil when nothing is to be exported.
    public static func from(environment: [String: String]) throws(TelemetryExportError) -> TelemetryExport? {
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
            return raw
        }
        if let disabled = value("OTEL_SDK_DISABLED") {
            switch disabled.lowercased() {
            case "true": return nil
            case "false": break
            default: throw TelemetryExportError(variable: "OTEL_SDK_DISABLED", problem: "`\(disabled)` is neither true nor false")
            }
        }
        let traces = try destination(
            signal: "traces", exporterVariable: "OTEL_TRACES_EXPORTER", onWithoutExporter: true, value: value)
        let metrics = try destination(
            signal: "metrics", exporterVariable: "OTEL_METRICS_EXPORTER", onWithoutExporter: false, value: value)
        let export = TelemetryExport(traces: traces, metrics: metrics)
        return export.isEnabled ? export : nil
    }

    /// - Parameter onWithoutExporter: whether an endpoint alone (exporter variable unset) switches
    ///   the signal on.
    private static func destination(
        signal: String, exporterVariable: String, onWithoutExporter: Bool, value: (String) -> String?
    ) throws(TelemetryExportError) -> Destination? {
        let upper = signal.uppercased()
        let ownEndpoint = value("OTEL_EXPORTER_OTLP_\(upper)_ENDPOINT")
        let sharedEndpoint = value("OTEL_EXPORTER_OTLP_ENDPOINT")
        if let exporters = value(exporterVariable) {
            let names = exporters.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            switch Set(names) {
            case ["none"]: return nil
            case ["otlp"]: break
            default:
                throw TelemetryExportError(
                    variable: exporterVariable,
                    problem: "`\(exporters)` is not supported: outbox-relay exports \(signal) over OTLP only; set otlp, or none to export nothing")
            }
        } else if !onWithoutExporter || (ownEndpoint == nil && sharedEndpoint == nil) {
            return nil
        }

        let protocolVariable = value("OTEL_EXPORTER_OTLP_\(upper)_PROTOCOL") != nil
            ? "OTEL_EXPORTER_OTLP_\(upper)_PROTOCOL" : "OTEL_EXPORTER_OTLP_PROTOCOL"
        let format: WireFormat
        switch value(protocolVariable) {
        case nil, "http/protobuf": format = .protobuf
        case "http/json": format = .json
        case "grpc":
            throw TelemetryExportError(
                variable: protocolVariable,
                problem: "grpc is not built into outbox-relay, which exports OTLP over HTTP: set http/protobuf and point the endpoint at the collector's OTLP/HTTP port (4318 by default)")
        case let other?:
            throw TelemetryExportError(variable: protocolVariable, problem: "`\(other)` is not one of http/protobuf, http/json")
        }

        let endpoint: String
        if let ownEndpoint {
            endpoint = try checkedURL(ownEndpoint, variable: "OTEL_EXPORTER_OTLP_\(upper)_ENDPOINT")
        } else {
            let base = try checkedURL(sharedEndpoint ?? "http://localhost:4318", variable: "OTEL_EXPORTER_OTLP_ENDPOINT")
            endpoint = base.hasSuffix("/") ? "\(base)v1/\(signal)" : "\(base)/v1/\(signal)"
        }
        return Destination(endpoint: endpoint, format: format)
    }

    /// `text` if it is an http(s) URL with a host, without its user info (which may hold a
    /// password and is never echoed, in an error either).
    private static func checkedURL(_ text: String, variable: String) throws(TelemetryExportError) -> String {
        guard var components = URLComponents(string: text) else {
            throw TelemetryExportError(variable: variable, problem: "not a URL; write one like http://otel-collector:4318")
        }
        let hadUserInfo = components.user != nil || components.password != nil
        components.user = nil
        components.password = nil
        let shown = components.string ?? "the value"
        guard let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = components.host, !host.isEmpty
        else {
            throw TelemetryExportError(
                variable: variable, problem: "`\(shown)` is not an http:// or https:// URL with a host; write one like http://otel-collector:4318")
        }
        guard !hadUserInfo else {
            throw TelemetryExportError(
                variable: variable,
                problem: "`\(shown)` carries user info, which OTLP/HTTP does not send; put credentials in OTEL_EXPORTER_OTLP_HEADERS (e.g. authorization=Bearer …)")
        }
        return shown
    }
}

/// An `OTEL_*` value the relay cannot export with: which variable, and what to set instead.
public struct TelemetryExportError: Error, CustomStringConvertible, Equatable {
    public var variable: String
    public var problem: String

    public var description: String { "configuration error: \(variable): \(problem)" }
}
