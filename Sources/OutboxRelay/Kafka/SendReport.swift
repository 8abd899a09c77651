/// What one ``KafkaProducer/send(_:until:abandonWhen:)`` call came to.
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

    /// One per record, in order.
    public var results: [Result<Void, DeliveryError>]
    /// Why the call stopped waiting, when it did and some record failed for it; nil otherwise.
    public var gaveUp: GaveUp?

    public init(results: [Result<Void, DeliveryError>], gaveUp: GaveUp?) {
        self.results = results
        self.gaveUp = gaveUp
    }
}
