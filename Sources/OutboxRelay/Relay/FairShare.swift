/// How many lanes one relay should hold: about lanes ÷ live relays, rounded up so that every lane
/// has a taker even when the division is not even (a relay that finds no free lane simply holds
/// fewer for a while).
public enum FairShare {
    public static func target(lanes: Int, liveRelays: Int) -> Int {
        let relays = max(liveRelays, 1)
        return (lanes + relays - 1) / relays
    }
}
