/// How one batch read walks the relay's lanes.
///
/// The outbox heap is in id order (rows are appended as they are inserted), with every lane's
/// rows interleaved on each page. So the two ways to read "the oldest rows of my lanes" cost
/// different things:
/// - **in id order** from the lowest floor, on the primary key: the rows come in heap order, a
///   page at a time (about 15 rows of 256 B per page visit), but the walk also passes every row of
///   the lanes other relays hold (with 4 relays, 3 of every 4 rows it looks at) and checks each;
/// - **per lane** from each lane's own floor, on the `(lane, id)` index (one descent per lane): it
///   looks only at rows it returns, but each is on a page of its own (the lane's neighbours are
///   other lanes' rows), and it needs a descent per lane however few rows the lane has.
///
/// Measured (BENCHMARKS.md, "Read walk"): the id walk is cheaper while the relay holds a large
/// share of the lanes and grows with the fleet; the per-lane walk does not depend on the fleet.
/// ``cheaper(held:of:)`` picks by that measurement.
///
/// The per-lane walk also gives each lane a **quota**, so one lane's backlog (a hot key) cannot
/// fill every batch while the other lanes wait: a lane gets its share of the batch, and more only
/// while the others leave room (``LaneCursors``).
enum ReadShape: Sendable, Equatable {
    /// One walk in id order after `start` (the lowest floor of the lanes read).
    case idOrder(start: Int64)
    /// Each lane after its own floor, at most its quota of rows; the batch is the first `limit`
    /// of them in id order.
    case perLane([LaneRead])

    struct LaneRead: Sendable, Equatable {
        var lane: Int16
        var after: Int64
        var quota: Int
    }

    enum Kind: Sendable, Equatable {
        case idOrder, perLane
    }

    /// The walk that costs the database less when this relay holds `held` of `total` lanes and
    /// the rest are held by others (whose rows the id walk passes).
    ///
    /// Per row returned the id walk examines `total / held` rows (on pages it visits anyway); the
    /// per-lane walk visits about one page per row plus a descent per lane. Measured (server-side
    /// execution of a 1,000-row read, 200,000 rows × 256 B): id walk 0.31 / 0.57 / 1.00 / 2.63 ms
    /// holding 256 / 128 / 64 / 32 lanes, per-lane walk 3.33 / 1.73 / 1.61 / 1.29 ms; in whole
    /// drains with 2-4 relays the per-lane walk read 4× the buffers per row and cost PostgreSQL
    /// more CPU per message. So the per-lane walk is taken from an eighth of the lanes down (a
    /// fleet of 8 or more), where the id walk examines 8 rows per row it returns.
    static func cheaper(held: Int, of total: Int) -> Kind {
        guard held > 0, total > 0 else { return .idOrder }
        return held * 8 <= total ? .perLane : .idOrder
    }
}

/// Which walk a relay's batch reads take (`OUTBOX_READ_WALK`).
public enum ReadWalk: String, Sendable, CaseIterable {
    /// By the share of lanes held (``ReadShape/cheaper(held:of:)``).
    case auto
    /// Always in id order (what relays did before the per-lane walk).
    case idOrder = "id-order"
    /// Always per lane.
    case perLane = "per-lane"
}
