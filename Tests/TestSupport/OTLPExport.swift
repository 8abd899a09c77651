import Foundation

/// A span as an OTLP/HTTP export request carries it (`opentelemetry.proto.trace.v1.Span`), with
/// the attributes of its resource, decoded from protobuf by field number.
public struct ExportedSpan: Sendable, CustomStringConvertible {
    public enum Kind: UInt64, Sendable { case unspecified, `internal`, server, client, producer, consumer }

    public var name: String
    public var kind: Kind
    /// Hex, as in a `traceparent`.
    public var traceID: String
    public var spanID: String
    /// Empty for a root span.
    public var parentSpanID: String
    public var attributes: [String: String]
    /// (trace id, span id) of each link.
    public var links: [(traceID: String, spanID: String)]
    /// 0 unset, 1 ok, 2 error.
    public var statusCode: UInt64
    public var statusMessage: String
    public var eventNames: [String]
    public var resource: [String: String]

    public var description: String { "\(name) [\(traceID)/\(spanID) parent \(parentSpanID.isEmpty ? "-" : parentSpanID)]" }

    /// The spans of one `ExportTraceServiceRequest` body.
    public static func decode(request body: [UInt8]) throws -> [ExportedSpan] {
        var spans: [ExportedSpan] = []
        for resourceSpans in try ProtobufFields(body).messages(1) {
            let resource = try attributes(try resourceSpans.message(1)?.messages(1) ?? [])
            for scopeSpans in try resourceSpans.messages(2) {
                for span in try scopeSpans.messages(2) {
                    let status = try span.message(15)
                    spans.append(ExportedSpan(
                        name: span.string(5) ?? "",
                        kind: Kind(rawValue: span.integer(6) ?? 0) ?? .unspecified,
                        traceID: hex(span.bytes(1).first), spanID: hex(span.bytes(2).first),
                        parentSpanID: hex(span.bytes(4).first),
                        attributes: try attributes(try span.messages(9)),
                        links: try span.messages(13).map { (hex($0.bytes(1).first), hex($0.bytes(2).first)) },
                        statusCode: status?.integer(3) ?? 0, statusMessage: status?.string(2) ?? "",
                        eventNames: try span.messages(11).compactMap { $0.string(2) },
                        resource: resource))
                }
            }
        }
        return spans
    }

    /// The metric names of one `ExportMetricsServiceRequest` body.
    public static func metricNames(request body: [UInt8]) throws -> [String] {
        try ProtobufFields(body).messages(1).flatMap { resourceMetrics in
            try resourceMetrics.messages(2).flatMap { scope in try scope.messages(2).compactMap { $0.string(1) } }
        }
    }

    /// `KeyValue`s with scalar values, rendered as text (ints in decimal, bools as true/false).
    static func attributes(_ keyValues: [ProtobufFields]) throws -> [String: String] {
        var result: [String: String] = [:]
        for keyValue in keyValues {
            guard let key = keyValue.string(1), let value = try keyValue.message(2) else { continue }
            if let text = value.string(1) {
                result[key] = text
            } else if let flag = value.integer(2) {
                result[key] = flag != 0 ? "true" : "false"
            } else if let number = value.integer(3) {
                result[key] = String(Int64(bitPattern: number))
            } else if let bits = value.integer(4) {
                result[key] = String(Double(bitPattern: bits))
            }
        }
        return result
    }

    static func hex(_ bytes: [UInt8]?) -> String {
        (bytes ?? []).map { String(format: "%02x", $0) }.joined()
    }
}
