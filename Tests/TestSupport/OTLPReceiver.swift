import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A stand-in for an OpenTelemetry collector's OTLP/HTTP receiver on loopback: it accepts every
/// `POST /v1/traces` and `/v1/metrics`, answers success as a collector does (an empty response
/// message), and keeps what arrived, so a test can decode the spans a real binary exported
/// (``ExportedSpan``) and check the headers it sent. The load test uses it as a sink that costs
/// the relay what a real collector would.
public final class OTLPReceiver: Sendable {
    public struct Request: Sendable {
        public var path: String
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    public let port: Int
    private let channel: any Channel
    private let received = Mutex<[Request]>([])
    /// Decoding can be skipped (a sink in a benchmark keeps only the counts).
    private let keepBodies: Bool
    private let counts = Mutex<(requests: Int, bytes: Int)>((0, 0))

    private init(port: Int, channel: any Channel, keepBodies: Bool) {
        self.port = port
        self.channel = channel
        self.keepBodies = keepBodies
    }

    /// Listens on 127.0.0.1, on a free port.
    public static func start(keepBodies: Bool = true) async throws -> OTLPReceiver {
        let holder = LateBinding<OTLPReceiver>()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(RequestHandler(holder: holder))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let receiver = OTLPReceiver(port: channel.localAddress?.port ?? 0, channel: channel, keepBodies: keepBodies)
        holder.set(receiver)
        return receiver
    }

    /// `http://127.0.0.1:<port>`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    public var endpoint: String { "http://127.0.0.1:\(port)" }

    public var requests: [Request] { received.withLock { $0 } }
    public var requestCount: Int { counts.withLock { $0.requests } }
    public var bytesReceived: Int { counts.withLock { $0.bytes } }

    /// Every span received so far.
    public func spans() throws -> [ExportedSpan] {
        try requests.filter { $0.path == "/v1/traces" }.flatMap { try ExportedSpan.decode(request: $0.body) }
    }

    public func close() async {
        try? await channel.close()
    }

    fileprivate func record(_ request: Request) {
        counts.withLock { $0 = ($0.requests + 1, $0.bytes + request.body.count) }
        guard keepBodies else { return }
        received.withLock { $0.append(request) }
    }

    private final class RequestHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let holder: LateBinding<OTLPReceiver>
        private var head: HTTPRequestHead?
        private var body: [UInt8] = []

        init(holder: LateBinding<OTLPReceiver>) { self.holder = holder }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(var buffer):
                body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
            case .end:
                guard let head else { return }
                self.head = nil
                holder.value?.record(Request(path: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: body))
                let json = head.headers.first(name: "content-type")?.hasPrefix("application/json") == true
                let answer: [UInt8] = json ? Array("{}".utf8) : []
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: json ? "application/json" : "application/x-protobuf")
                headers.add(name: "content-length", value: "\(answer.count)")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: answer)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
