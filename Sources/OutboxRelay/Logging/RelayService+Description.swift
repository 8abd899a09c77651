/// ServiceLifecycle logs its services at start-up (debug level, `sl-services`) with their
/// descriptions; the default reflection of ``RelayService`` would print the whole Kafka
/// configuration, secrets included. Name the relay instead.
extension RelayService: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String {
        "RelayService(relay: \(configuration.relayID), schema: \(configuration.schema))"
    }

    public var debugDescription: String { description }
}
