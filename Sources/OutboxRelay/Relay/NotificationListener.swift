import Logging
import PostgresNIO

/// LISTENs on the outbox's channel and rings the doorbell for every notification, so an idle relay
/// publishes a new message within milliseconds instead of at the next poll. The poll stays as the
/// fallback: a lost connection or a missed notification only costs up to one poll interval.
///
/// The LISTEN connection has no deadline (it waits for notifications by design), so it is held
/// abandonably: on cancellation the relay walks away from it at once, even when its link went
/// silent and PostgresNIO's cancellation of the listen would never be answered.
struct NotificationListener: Sendable {
    let client: PostgresClient
    let channel: String
    let doorbell: Doorbell
    let logger: Logger

    func run() async {
        while !Task.isCancelled {
            let (client, channel, doorbell) = (self.client, self.channel, self.doorbell)
            do {
                try await abandoningOnCancellation {
                    try await client.withConnection { connection in
                        try await connection.listen(on: channel) { notifications in
                            // Whatever was enqueued while we were not listening is found by this read.
                            doorbell.ring()
                            for try await _ in notifications {
                                doorbell.ring()
                            }
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.debug("LISTEN connection lost; reconnecting", metadata: ["error": "\(String(reflecting: error))"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
