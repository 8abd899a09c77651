import NIOCore
import NIOPosix
import Synchronization

/// A TCP proxy on loopback between a relay and its database or broker that injects the faults a
/// network produces, on command: cut every connection, blackhole (accept, never answer), refuse,
/// add latency, heal. Relays under test connect to ``port`` with their normal settings.
///
/// - ``Mode/pass``: bytes flow both ways.
/// - ``Mode/blackhole``: the link swallows everything in both directions, on open connections and
///   new ones alike (accepted, never connected upstream); nothing is closed, so the peers see a
///   silent link — the half-open connection a dead switch or a partition leaves behind.
/// - ``Mode/refuse``: new connections are closed as soon as they are accepted; open ones go on.
/// - ``Mode/latency(_:)``: every chunk waits this long before it is passed on, in each direction.
/// - ``cut()``: closes every open connection now (a restart or failover seen from the client).
///
/// Bytes swallowed by a blackhole are gone (not delivered at heal): like a real partition, the
/// statement in flight never gets its answer and only a deadline frees its caller.
public final class FaultProxy: Sendable {
    public enum Mode: Sendable, Equatable {
        case pass, blackhole, refuse
        case latency(Duration)
    }

    public let port: Int
    private let upstreamHost: String
    private let upstreamPort: Int
    private let state = Mutex(State())
    private let server: Channel

    private struct State {
        var mode = Mode.pass
        var open: [ObjectIdentifier: any Channel] = [:]
        var accepted = 0
    }

    private init(port: Int, upstreamHost: String, upstreamPort: Int, server: Channel) {
        self.port = port
        self.upstreamHost = upstreamHost
        self.upstreamPort = upstreamPort
        self.server = server
    }

    /// Listens on 127.0.0.1 (a free port) and forwards to `upstreamHost:upstreamPort`.
    public static func start(upstreamHost: String = "127.0.0.1", upstreamPort: Int) async throws -> FaultProxy {
        let holder = LateBinding<FaultProxy>()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeSucceededVoidFuture().map {
                    holder.value?.accept(channel)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let proxy = FaultProxy(
            port: server.localAddress?.port ?? 0, upstreamHost: upstreamHost, upstreamPort: upstreamPort, server: server)
        holder.set(proxy)
        return proxy
    }

    public var mode: Mode { state.withLock { $0.mode } }
    /// Connections accepted so far (to tell that a client reconnected).
    public var accepted: Int { state.withLock { $0.accepted } }

    public func set(_ mode: Mode) {
        state.withLock { $0.mode = mode }
    }

    public func heal() { set(.pass) }

    /// Closes every open connection, both sides.
    public func cut() {
        let channels = state.withLock { state in
            defer { state.open = [:] }
            return Array(state.open.values)
        }
        for channel in channels { channel.close(promise: nil) }
    }

    /// Stops listening and closes everything.
    public func stop() async {
        cut()
        try? await server.close()
    }

    // MARK: Forwarding

    private func accept(_ client: any Channel) {
        let mode = state.withLock { state -> Mode in
            state.accepted += 1
            return state.mode
        }
        switch mode {
        case .refuse:
            client.close(promise: nil)
            return
        case .blackhole:
            // Accepted, never connected upstream: every byte is swallowed.
            track(client)
            _ = client.pipeline.addHandler(Swallow())
            return
        case .pass, .latency:
            break
        }
        track(client)
        _ = client.setOption(.autoRead, value: false)
        let proxy = self
        ClientBootstrap(group: client.eventLoop)
            .connect(host: upstreamHost, port: upstreamPort)
            .whenComplete { result in
                switch result {
                case .failure:
                    client.close(promise: nil)
                case .success(let upstream):
                    proxy.track(upstream)
                    // On the client's event loop (the bootstrap's group), like the upstream's.
                    try? client.pipeline.syncOperations.addHandler(Forward(peer: upstream, proxy: proxy))
                    try? upstream.pipeline.syncOperations.addHandler(Forward(peer: client, proxy: proxy))
                    _ = client.setOption(.autoRead, value: true)
                }
            }
    }

    private func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLock { $0.open[id] = channel }
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.state.withLock { _ = $0.open.removeValue(forKey: id) }
        }
    }

    /// Passes reads to the peer according to the proxy's mode at the moment they arrive.
    private final class Forward: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let peer: any Channel
        let proxy: FaultProxy
        /// When the latest delayed chunk goes out: a later chunk never overtakes it, also after
        /// the latency changed or was healed (the byte stream must stay in order).
        var lastDeadline = NIODeadline.uptimeNanoseconds(0)

        init(peer: any Channel, proxy: FaultProxy) {
            self.peer = peer
            self.proxy = proxy
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = Self.unwrapInboundIn(data)
            let delay: Duration
            switch proxy.mode {
            case .pass, .refuse:
                delay = .zero
            case .blackhole:
                return
            case .latency(let latency):
                delay = latency
            }
            let deadline = max(NIODeadline.now() + .nanoseconds(delay.nanoseconds), lastDeadline + .nanoseconds(1))
            if deadline <= NIODeadline.now() {
                peer.writeAndFlush(buffer, promise: nil)
                return
            }
            lastDeadline = deadline
            let peer = self.peer
            context.eventLoop.scheduleTask(deadline: deadline) {
                peer.writeAndFlush(buffer, promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            peer.close(promise: nil)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    private final class Swallow: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    }

    /// Lets the child initializer reach the proxy created after `bind` returned.
}

extension Duration {
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
