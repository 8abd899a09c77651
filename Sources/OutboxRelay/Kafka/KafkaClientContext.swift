import CRdKafka
import Logging

/// What librdkafka's C callbacks need to reach Swift: the logger and the producer's fatal-error state.
///
/// C callbacks cannot capture, so one context per client handle is passed as librdkafka's `opaque`
/// (`rd_kafka_conf_set_opaque`), retained for the handle's whole life and released after `rd_kafka_destroy`
/// returned (no callback can run after that).
final class KafkaClientContext: Sendable {
    let logger: Logger
    private let fatal = KafkaLocked<DeliveryError?>(nil)
    private let lastError = KafkaLocked<String?>(nil)

    init(logger: Logger) {
        self.logger = logger
    }

    /// The first fatal error reported for this handle, if any.
    var fatalError: DeliveryError? { fatal.withLock { $0 } }

    /// The latest client-level error librdkafka reported (`_RESOLVE: Failed to resolve …`,
    /// `_TRANSPORT: … Connection refused`): the cause to name when the broker cannot be reached.
    var lastClientError: String? { lastError.withLock { $0 } }

    /// Registers the log and error callbacks and makes this context the conf's opaque.
    /// Returns the retained opaque pointer; balance it with ``release(_:)`` once the handle is destroyed
    /// (or when `rd_kafka_new` failed).
    func install(on conf: KafkaConf) -> UnsafeMutableRawPointer {
        let opaque = Unmanaged.passRetained(self).toOpaque()
        rd_kafka_conf_set_opaque(conf.pointer, opaque)
        // Called from librdkafka's internal threads, concurrently: only touches the (thread-safe) logger.
        rd_kafka_conf_set_log_cb(conf.pointer) { rk, level, facility, message in
            guard let rk, let opaque = rd_kafka_opaque(rk) else { return }
            let context = Unmanaged<KafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
            context.logLibrdkafka(
                level: level,
                facility: facility.map { String(cString: $0) } ?? "",
                message: message.map { String(cString: $0) } ?? ""
            )
        }
        // Served by whoever polls the handle (the producer's poll thread, the reader's consumer poll).
        rd_kafka_conf_set_error_cb(conf.pointer) { rk, code, reason, opaque in
            guard let opaque else { return }
            let context = Unmanaged<KafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
            context.handleClientError(rk: rk, code: rd_kafka_resp_err_t(rawValue: code), reason: reason.map { String(cString: $0) } ?? "")
        }
        return opaque
    }

    /// Balances ``install(on:)``.
    static func release(_ opaque: UnsafeMutableRawPointer) {
        Unmanaged<KafkaClientContext>.fromOpaque(opaque).release()
    }

    /// librdkafka's syslog levels → swift-log levels.
    static func logLevel(syslog level: Int32) -> Logger.Level {
        switch level {
        case ...2: return .critical
        case 3: return .error
        case 4: return .warning
        case 5: return .notice
        case 6: return .info
        default: return .debug
        }
    }

    private func logLibrdkafka(level: Int32, facility: String, message: String) {
        logger.log(
            level: Self.logLevel(syslog: level, facility: facility, message: message),
            "librdkafka: \(message)",
            metadata: ["kafka.facility": "\(facility)"]
        )
    }

    /// The level of one librdkafka log line, lowered for lines the relay causes or reports itself:
    /// - connection failures (`FAIL`, level 3) repeat at every reconnect attempt while a broker is
    ///   down (many per second across the producer and the probes); the relay reports the outage
    ///   itself, once: debug;
    /// - the "experimental" warning for `enable.gapless.guarantee`, which the relay sets on purpose
    ///   on every producer (see `KafkaProducerConfiguration`): debug;
    /// - the fatal error gapless raises when the relay itself purged records in flight (giving up a
    ///   batch): expected, and the producer is replaced; a warning, not a critical page.
    static func logLevel(syslog level: Int32, facility: String, message: String) -> Logger.Level {
        if facility == "FAIL" || (facility == "CONFWARN" && message.contains("enable.gapless.guarantee")) { return .debug }
        if facility == "FATAL" && isAfterOwnPurge(message) { return .warning }
        return logLevel(syslog: level)
    }

    /// A gapless-guarantee fatal error caused by the relay's own purge of records in flight.
    static func isAfterOwnPurge(_ text: String) -> Bool {
        text.contains("Purged in flight") || text.contains("Purged in queue")
    }

    /// Client-level errors (not per record). Individual connection failures are already logged by librdkafka
    /// itself (log callback) and surface per record as outage classes, so they are only logged at debug here;
    /// "all brokers down" is info (emitted once per transition, and also when a producer is closed; the relay
    /// logs its own warning when an outage pauses publishing); a fatal error is recorded and logged
    /// loudly, because the handle is unusable from now on.
    func handleClientError(rk: OpaquePointer?, code: rd_kafka_resp_err_t, reason: String) {
        guard code == RD_KAFKA_RESP_ERR__FATAL else {
            lastError.withLock { $0 = "\(String(cString: rd_kafka_err2name(code))): \(reason)" }
            logger.log(
                level: code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? .info : .debug,
                "Kafka client error",
                metadata: [
                    "kafka.error": "\(String(cString: rd_kafka_err2name(code)))",
                    "kafka.reason": "\(reason)",
                ]
            )
            return
        }
        var underlying = code
        var text = reason
        if let rk {
            var buffer = [CChar](repeating: 0, count: 512)
            underlying = rd_kafka_fatal_error(rk, &buffer, buffer.count)
            text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
        let error = DeliveryError(
            code: RD_KAFKA_RESP_ERR__FATAL.rawValue,
            name: String(cString: rd_kafka_err2name(RD_KAFKA_RESP_ERR__FATAL)),
            message: "fatal producer error \(String(cString: rd_kafka_err2name(underlying))): \(text)",
            failureClass: KafkaErrorClassifier.classify(RD_KAFKA_RESP_ERR__FATAL.rawValue)
        )
        let first = fatal.withLock { stored -> Bool in
            guard stored == nil else { return false }
            stored = error
            return true
        }
        if first {
            // After the relay's own purge this is expected (the pipeline replaces the producer).
            let expected = underlying == RD_KAFKA_RESP_ERR__GAPLESS_GUARANTEE && Self.isAfterOwnPurge(text)
            logger.log(
                level: expected ? .warning : .critical,
                expected
                    ? "Kafka producer stopped after the relay purged records in flight (gapless guarantee); it is replaced"
                    : "Kafka producer hit a fatal error: every further send fails with _FATAL; recreate the producer",
                metadata: [
                    "kafka.error": "\(String(cString: rd_kafka_err2name(underlying)))",
                    "kafka.reason": "\(text)",
                ]
            )
        }
    }
}
