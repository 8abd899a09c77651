/// What one ``KafkaProducer/send(_:until:stragglers:abandonWhen:)`` call came to.
public struct SendReport: Sendable {
    /// Why a send stopped waiting and purged what was outstanding.
    public enum GaveUp: Sendable, Equatable, CustomStringConvertible {
        /// No delivery report within the delivery timeout: the broker (or the path to it, or one
        /// partition's leader) is not taking records.
        case deliveryTimeout(Duration)
        /// The caller's reason, e.g. a lane lease running out: the records are no longer this
        /// relay's to publish.
        case abandoned(String)

        public var description: String {
            switch self {
            case .deliveryTimeout(let timeout): "no delivery report within the delivery timeout (\(timeout))"
            case .abandoned(let reason): reason
            }
        }
    }

    /// One per record, in order; nil for a record still in flight (one of ``outstanding``).
    public var results: [Result<Void, DeliveryError>?]
    /// Why the call stopped waiting, when it did and some record failed for it; nil otherwise.
    public var gaveUp: GaveUp?
    /// Records left in flight when the call returned early (stragglers, see ``StragglerPolicy``).
    public var outstanding: OutstandingDeliveries?
    /// One per record: the partition its delivery report named (nil: no report yet, or none).
    public var partitions: [Int32?]

    public init(
        results: [Result<Void, DeliveryError>?], gaveUp: GaveUp?, outstanding: OutstandingDeliveries? = nil, partitions: [Int32?] = []
    ) {
        self.results = results
        self.partitions = partitions
        self.gaveUp = gaveUp
        self.outstanding = outstanding
    }
}

/// When a send may return before every delivery report is in.
///
/// One partition without a reachable leader (down, moving, slow) holds its records back while every
/// other partition's are delivered at once. Waiting for them would make every key wait for that
/// partition, batch after batch, until the delivery timeout. With a policy, once at least one report
/// is in, some are not, and none arrived for `grace`, the send returns with the rest still in flight
/// (nothing is purged: purging in-flight requests makes an idempotent producer drain and reset every
/// partition) and the caller decides what waits for them.
public struct StragglerPolicy: Sendable {
    /// Quiet time after the latest report before the records still outstanding count as stragglers.
    public var grace: Duration
    /// At most this many records may be left in flight; with more outstanding the send waits as usual.
    public var budget: Int

    public init(grace: Duration, budget: Int) {
        self.grace = grace
        self.budget = budget
    }
}
