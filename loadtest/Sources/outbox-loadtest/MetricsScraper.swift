import Foundation

#if canImport(Glibc)
import Glibc
private let streamSocket = Int32(SOCK_STREAM.rawValue)
#else
import Darwin
private let streamSocket = SOCK_STREAM
#endif

/// Reads one counter from a relay's Prometheus endpoint: how each relay's share of the work is
/// measured without trusting anything but the relay's own report.
///
/// A blocking HTTP/1.1 GET on loopback with a 200 ms socket timeout, called at most once a second per
/// relay: cheap enough not to need an HTTP client dependency.
enum MetricsScraper {
    /// The value of `metric` (no labels) at 127.0.0.1:`port`/metrics, nil when the relay does not answer.
    static func value(of metric: String, port: Int) -> Double? {
        guard let body = get(port: port, path: "/metrics") else { return nil }
        for line in body.split(separator: "\n") where line.hasPrefix(metric + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    private static func get(port: Int, path: String) -> String? {
        let fd = socket(AF_INET, streamSocket, 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var limit = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            guard count > 0 else { return nil }
            received += chunk[0..<count]
        }
        let text = String(decoding: received, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.1 200"), let headerEnd = text.range(of: "\r\n\r\n") else { return nil }
        return String(text[headerEnd.upperBound...])
    }
}
