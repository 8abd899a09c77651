/// A lane this relay holds, with the epoch that fences every write to the lane's rows.
///
/// The epoch is incremented by every claim, so a relay that lost the lane (expired, taken over)
/// still carries the old epoch and its late deletes and dead-letter moves match nothing.
public struct LaneLease: Sendable, Hashable {
    public var lane: Int16
    public var epoch: Int64

    public init(lane: Int16, epoch: Int64) {
        self.lane = lane
        self.epoch = epoch
    }
}
