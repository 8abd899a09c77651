import Foundation
import OutboxRelay

/// How `outbox-relay console` serves: where, with which token, and whether changes are offered.
public struct ConsoleSettings: Sendable {
    /// `127.0.0.1:9465` unless `--listen` / `OUTBOX_CONSOLE_ADDRESS` says otherwise.
    public static let defaultAddress = HTTPAddress(host: "127.0.0.1", port: 9465)
    /// Shorter tokens are refused: the token is all that stands between the network and replay.
    public static let minimumTokenLength = 16
    /// The variables `outbox-relay console` reads besides the relay's own settings.
    public static let environmentNames: Set<String> = [
        "OUTBOX_CONSOLE_ADDRESS", "OUTBOX_CONSOLE_TOKEN", "OUTBOX_CONSOLE_READ_ONLY", "OUTBOX_CONSOLE_REFRESH",
    ]

    public var address: HTTPAddress
    /// Every request must carry it (a bearer header, or the session cookie the login page sets).
    /// Required to listen anywhere but loopback.
    public var token: String?
    /// No replay, no purge: the pages offer none, and the routes refuse them.
    public var readOnly: Bool
    /// How often the fleet page refreshes itself and the throughput is sampled.
    public var refreshInterval: Duration
    /// Heartbeats older than this count as a relay gone (the relays' lease TTL).
    public var leaseTTL: Duration

    public init(
        address: HTTPAddress = Self.defaultAddress, token: String? = nil, readOnly: Bool = false,
        refreshInterval: Duration = .seconds(5), leaseTTL: Duration = .seconds(15)
    ) {
        self.address = address
        self.token = token
        self.readOnly = readOnly
        self.refreshInterval = refreshInterval
        self.leaseTTL = leaseTTL
    }

    /// Whether the address only accepts connections from this machine.
    public var isLoopback: Bool { Self.isLoopback(host: address.host) }

    static func isLoopback(host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// Refuses a console anyone on the network could change things with.
    public func validate() throws(ConsoleSettingsError) {
        if let token {
            guard token.count >= Self.minimumTokenLength, !token.contains(where: \.isWhitespace) else {
                throw .weakToken(minimum: Self.minimumTokenLength)
            }
        } else if !isLoopback {
            throw .tokenRequired(address: address.description)
        }
    }
}

/// Why the console will not start; each case says what to do.
public enum ConsoleSettingsError: Error, CustomStringConvertible, Equatable {
    case tokenRequired(address: String)
    case weakToken(minimum: Int)

    public var description: String {
        switch self {
        case .tokenRequired(let address):
            "the console would listen on \(address), which is not loopback, without a token: set OUTBOX_CONSOLE_TOKEN (or --token) to a secret of at least \(ConsoleSettings.minimumTokenLength) characters (e.g. `openssl rand -hex 32`), or listen on 127.0.0.1"
        case .weakToken(let minimum):
            "the console token is shorter than \(minimum) characters or contains spaces: use a long random secret, e.g. `openssl rand -hex 32`"
        }
    }
}
