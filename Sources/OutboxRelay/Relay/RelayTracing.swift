import Foundation
import Tracing

/// The relay's spans, made only when a tracer is given (``RelayService``'s `tracer`).
///
/// One span per published message, not one per batch with a link per message: the message's
/// span is a child of the enqueuer's span (its context travels in the row's headers:
/// `traceparent`/`tracestate`, or whatever the tracer injects), so a trace of one order shows the
/// relay's send inside it, with the broker's ack as its end. A batch span with links would sit in
/// a trace of its own, which most trace views show only as a pointer. The batch is still there:
/// every message span links to its `outbox.batch` span, whose children are the read and the settle.
///
/// Spans are made after the settle, with the send's start as their start: nothing is held or
/// extracted per message while the batch is in flight, and without a tracer (or with the no-op
/// one) none of this runs at all.
struct RelayTracing: Sendable {
    let tracer: any Tracer

    /// nil for no tracer or the no-op tracer: then the pipeline skips every tracing step.
    init?(_ tracer: (any Tracer)?) {
        guard let tracer, !(tracer is NoOpTracer) else { return nil }
        self.tracer = tracer
    }

    /// The root of one batch's work, from the start of its read (whose span it gets now: the read
    /// is only known to be worth a span once it found rows). A batch read ahead, during the
    /// previous batch's delivery, gets no read span of its own.
    func startBatch(at readStarted: some TracerInstant, read rows: Int, readAhead: Bool) -> any Span {
        let batch = tracer.startSpan("outbox.batch", context: .topLevel, ofKind: .internal, at: readStarted)
        batch.attributes["outbox.batch.rows"] = rows
        batch.attributes["outbox.batch.read_ahead"] = readAhead
        guard !readAhead else { return batch }
        let read = tracer.startSpan("outbox.read", context: batch.context, ofKind: .client, at: readStarted)
        read.attributes["db.system.name"] = "postgresql"
        read.attributes["outbox.batch.rows"] = rows
        read.end()
        return batch
    }

    /// A database step of the batch (`outbox.read`, `outbox.settle`), a child of its span.
    func startStep(_ name: String, of batch: any Span) -> any Span {
        let span = tracer.startSpan(name, context: batch.context, ofKind: .client)
        span.attributes["db.system.name"] = "postgresql"
        return span
    }

    /// A claim or release of lanes that changed something (a tick that changed nothing makes no span).
    func recordLeaseChange(_ name: String, startedAt: some TracerInstant, lanes: [Int16], relays: Int) {
        let span = tracer.startSpan(name, context: .topLevel, ofKind: .client, at: startedAt)
        span.updateAttributes { attributes in
            attributes["db.system.name"] = "postgresql"
            attributes["outbox.lanes.count"] = lanes.count
            attributes["outbox.fleet.relays"] = relays
        }
        span.end()
    }

    /// The partition of each row that has one, from a send's partitions in the rows' order.
    static func partitions(of rows: some Sequence<PendingMessage>, _ partitions: some Sequence<Int32?>) -> [Int64: Int32] {
        var byID: [Int64: Int32] = [:]
        for (row, partition) in zip(rows, partitions) { byID[row.id] = partition }
        return byID
    }

    /// What became of one row, as a span's outcome.
    enum Outcome: String, Sendable {
        case published
        /// Delivered, but behind an undelivered earlier message of its key: published again after it.
        case heldBack = "held_back"
        case retried
        case deadLettered = "dead_lettered"
        /// The broker was unreachable: left as it was, no attempt spent.
        case left
    }

    /// Ends one span per row whose fate the plan decided, parented by the enqueuer's context,
    /// linked to the batch. Rows still in flight as stragglers get theirs when they are settled
    /// (`straggled`: marked `outbox.straggler`), still linked to the batch that sent them.
    func recordMessages(
        _ rows: [PendingMessage], plan: SettlePlan, source: String, batch: any Span, sentAt: some TracerInstant,
        partitions: [Int64: Int32], straggled: Bool = false
    ) {
        var outcome: [Int64: (Outcome, String?)] = [:]
        outcome.reserveCapacity(rows.count)
        for row in plan.delivered { outcome[row.id] = (.published, nil) }
        for id in plan.heldBack { outcome[id] = (.heldBack, nil) }
        for id in plan.left { outcome[id] = (.left, plan.outage.map { "\($0.name): \($0.message)" }) }
        for retry in plan.retries { outcome[retry.id] = (.retried, retry.error) }
        for dead in plan.deadLetters { outcome[dead.id] = (.deadLettered, "\(dead.reason.rawValue): \(dead.error)") }
        let batchLink = SpanLink(context: batch.context, attributes: [:])
        for row in rows {
            guard let (result, error) = outcome[row.id] else { continue }
            var parent = ServiceContext.topLevel
            if let headers = try? EnvelopeBuilder.decodeHeaders(row.headersJSON), !headers.isEmpty {
                tracer.extract(MessageHeaders(headers), into: &parent, using: HeadersExtractor())
            }
            let span = tracer.startSpan("send \(row.topic)", context: parent, ofKind: .producer, at: sentAt)
            // Not sampled (e.g. the enqueuer's trace was not): nothing of it is kept, so build nothing.
            guard span.isRecording else {
                span.end()
                continue
            }
            span.addLink(batchLink)
            span.updateAttributes { attributes in
                attributes["messaging.system"] = "kafka"
                attributes["messaging.operation.type"] = "send"
                attributes["messaging.operation.name"] = "send"
                attributes["messaging.destination.name"] = row.topic
                attributes["messaging.message.id"] = "\(source)/\(row.id)"
                attributes["messaging.batch.message_count"] = rows.count
                if let partition = partitions[row.id] { attributes["messaging.destination.partition.id"] = "\(partition)" }
                attributes["outbox.id"] = Int(row.id)
                attributes["outbox.lane"] = Int(row.lane)
                attributes["outbox.attempt"] = Int(row.attempts) + 1
                attributes["outbox.outcome"] = result.rawValue
                if straggled { attributes["outbox.straggler"] = true }
            }
            if let error {
                span.attributes["error.type"] = result == .deadLettered ? "dead_lettered" : result.rawValue
                // A dead letter is the message's failure; a retry or an outage is a delay, not one.
                if result == .deadLettered { span.setStatus(SpanStatus(code: .error, message: error)) }
                span.addEvent(SpanEvent(name: result == .deadLettered ? "dead-lettered" : "not published", attributes: ["message": .string(error)]))
            }
            span.end()
        }
    }
}

/// Reads a propagated context from a message's headers.
struct HeadersExtractor: Extractor {
    func extract(key: String, from carrier: MessageHeaders) -> String? { carrier.headers[key] }
}

/// A message's headers as the carrier a tracer extracts its context from. It describes itself by
/// header names only: a tracer that cannot parse a context may log its carrier (swift-otel does,
/// at warning level), and header values are the application's data, credentials included.
struct MessageHeaders: CustomStringConvertible, Sendable {
    let headers: [String: String]

    init(_ headers: [String: String]) { self.headers = headers }

    var description: String { "message headers \(headers.keys.sorted())" }
}
