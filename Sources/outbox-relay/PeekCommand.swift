import ArgumentParser
import Foundation
import Logging
import OutboxEnvelope
import OutboxRelay

struct PeekCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peek",
        abstract: "Print the envelopes on a topic, from the beginning of every partition to its end.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Kafka topic.") var topic: String
    @Option(help: "Print at most this many records (the total is always shown).") var limit: Int = 20
    @Option(help: "Give up reading after this many seconds.") var timeout: Int = 30
    @Option(help: "Show only records with this key (its records are in one partition, in publish order).")
    var key: String?

    func run() async throws {
        let settings = try await global.settings()
        let logger = Logger(label: "outbox-relay.peek")
        let records: [ConsumedRecord]
        do {
            records = try await KafkaTopicReader.readAll(
                topic: topic, bootstrapServers: try settings.requireKafkaBrokers(),
                properties: settings.kafkaProperties, timeout: .seconds(timeout), logger: logger)
        } catch {
            throw CommandFailure.exit(error, settings: settings)
        }
        let sorted = records
            .filter { record in key.map { record.key == Array($0.utf8) } ?? true }
            .sorted { ($0.partition, $0.offset) < ($1.partition, $1.offset) }
        for record in sorted.prefix(limit) {
            let location = "\(record.topic)[\(record.partition)]@\(record.offset)"
            guard let envelope = try? Envelope(serializedBytes: record.value) else {
                print("\(location)  (not an outbox envelope, \(record.value.count) bytes)")
                continue
            }
            let key = String(decoding: envelope.key, as: UTF8.self)
            var payload = String(decoding: envelope.payload.prefix(80), as: UTF8.self)
            if envelope.payload.count > 80 { payload += "…" }
            let headers = envelope.headers.isEmpty ? "" : "  headers \(envelope.headers.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))"
            print("\(location)  id \(envelope.id)  key \(key)  seq \(envelope.sequence)  attempt \(envelope.attempt)  type \(envelope.type.isEmpty ? "-" : envelope.type)  payload \(payload)\(headers)")
        }
        if let key {
            print("\(sorted.count) record(s) with key \(key) of \(records.count) on topic \(topic)")
        } else {
            print("\(records.count) record(s) on topic \(topic)")
        }
    }
}
