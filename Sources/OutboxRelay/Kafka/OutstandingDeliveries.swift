/// Records a send left in flight when it returned early (stragglers, see ``StragglerPolicy``): their
/// delivery reports arrive later, and until then the caller keeps everything behind them waiting.
///
/// Publishing stays fenced while they wait: the caller's `abandonWhen` is still checked every 100 ms,
/// and once it names a reason (a lane lease running out) everything the producer holds is purged, so
/// none of these records reaches the broker after another relay may own their lanes. The same purge
/// happens at ``KafkaProducerConfiguration/stragglerTimeout``, before librdkafka's own message timeout
/// could fail them one by one (which would leave gaps). If the producer is
/// closed or replaced meanwhile, its teardown fails them (`_PURGE_*`, `_DESTROY`: outage class).
public final class OutstandingDeliveries: Sendable {
    /// The indices, in the send's records, of the records still in flight at its return.
    public let indices: [Int]
    private let topics: [String]
    private let shared: SharedDeliveryBatch
    private var batch: DeliveryBatch { shared.batch }
    /// The producer they are in flight on (maybe replaced since).
    let producer: KafkaProducer
    /// The send's watcher, still running: it purges on the fence or the straggler timeout, and ends
    /// at completion (or when ``results()`` cancels it). Returns why it purged, if it did.
    private let watcher: Task<SendReport.GaveUp?, Never>

    init(
        producer: KafkaProducer, batch: DeliveryBatch, indices: [Int], topics: [String],
        watcher: Task<SendReport.GaveUp?, Never>
    ) {
        self.indices = indices
        self.topics = topics
        self.shared = SharedDeliveryBatch(batch: batch)
        self.producer = producer
        self.watcher = watcher
    }

    /// Whether every report is in (``results()`` then returns at once).
    public var isComplete: Bool { batch.isComplete }

    /// How many of them are still in flight.
    public var count: Int { indices.count }

    /// Waits for every report and returns the results, in ``indices`` order. Call once.
    public func results() async -> [Result<Void, DeliveryError>] {
        try? await batch.completion.value()
        watcher.cancel()
        if let reason = await watcher.value {
            producer.logger.warning(
                "gave up on records left in flight; purged what was still queued or in flight",
                metadata: ["reason": "\(reason)", "records": "\(indices.count)"])
        }
        producer.handle.unregister(batch)
        return zip(indices, topics).map { index, topic in
            let code = batch.code(ofRecordAt: index)
            return code == 0 ? .success(()) : .failure(producer.deliveryError(code: code, topic: topic))
        }
    }

    /// The partition each was appended to, in ``indices`` order (nil where no report came or it
    /// failed): for their spans.
    public func partitions() -> [Int32?] { indices.map { batch.partition(ofRecordAt: $0) } }

    /// Gives up on them now (purging everything the producer holds): for a relay that stops.
    public func purge() {
        producer.purgeOutstanding()
    }
}
