import ArgumentParser
import Logging
import Outbox
import OutboxRelay

struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Enqueue messages into the outbox (for demos and scripts; applications call enqueue() in SQL or OutboxWriter).",
        discussion: "With --count N, every {i} in the key and payload is replaced by the message number (1...N).")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Kafka topic.") var topic: String
    @Option(help: "Message key (messages with one key are published in order).") var key: String?
    @Option(help: "Payload text.") var payload: String
    @Option(name: .customLong("header"), help: "A header name=value, repeatable.") var headers: [String] = []
    @Option(help: "Event type, e.g. order.created.") var type: String?
    @Option(name: .customLong("content-type"), help: "Payload media type, e.g. application/json.") var contentType: String?
    @Option(help: "How many messages to enqueue (in one transaction).") var count: Int = 1

    func validate() throws {
        guard count >= 1, count <= 10_000_000 else { throw ValidationError("--count must be from 1 to 10000000") }
        for header in headers where !header.contains("=") || header.hasPrefix("=") {
            throw ValidationError("--header \(header) is not name=value")
        }
    }

    func run() async throws {
        let settings = try await global.settings()
        let logger = Logger(label: "outbox-relay.enqueue")
        var headerMap: [String: String] = [:]
        for header in headers {
            let equals = header.firstIndex(of: "=")!
            headerMap[String(header[..<equals])] = String(header[header.index(after: equals)...])
        }
        let messages = (1...count).map { i in
            OutboxMessage(
                topic: topic,
                key: key.map { count > 1 ? $0.replacingOccurrences(of: "{i}", with: "\(i)") : $0 },
                payload: count > 1 ? payload.replacingOccurrences(of: "{i}", with: "\(i)") : payload,
                headers: headerMap, type: type, contentType: contentType)
        }
        do {
            let writer = OutboxWriter(schema: settings.relay.schema)
            let ids = try await withPostgresClient(settings, logger: logger) { client in
                try await client.withTransaction(logger: logger) { connection in
                    var ids: [Int64] = []
                    for chunk in stride(from: 0, to: messages.count, by: 5000) {
                        let slice = Array(messages[chunk..<min(chunk + 5000, messages.count)])
                        ids += try await writer.enqueue(slice, on: connection, logger: logger)
                    }
                    return ids
                }
            }
            if ids.count == 1 {
                print("enqueued message \(ids[0]) for topic \(topic)")
            } else {
                print("enqueued \(ids.count) messages (ids \(ids.first!)...\(ids.last!)) for topic \(topic)")
            }
        } catch {
            throw CommandFailure.exit(error, settings: settings)
        }
    }
}
