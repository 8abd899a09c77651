import Foundation

#if canImport(Glibc)
import Glibc
private let streamSocket = Int32(SOCK_STREAM.rawValue)
#else
import Darwin
private let streamSocket = SOCK_STREAM
#endif

/// A tiny blocking HTTP/1.1 client over a POSIX socket, for scraping the relay's endpoints from
/// the integration tests and the load test (loopback IPv4 only; `Connection: close`, so the body is
/// everything after the headers): cheap enough not to need an HTTP client dependency.
public enum HTTPGet {
    public struct Response: Sendable {
        public var status: Int
        public var body: String
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// GET `path` from 127.0.0.1:`port`, waiting at most `timeout` for each socket call.
    public static func get(port: Int, path: String, timeout: Duration = .seconds(5)) throws -> Response {
        try request(port: port, method: "GET", path: path, timeout: timeout)
    }

    /// One request with an optional JSON body (the WebDriver tests talk to chromedriver with it).
    public static func request(
        port: Int, method: String, path: String, json body: String? = nil, timeout: Duration = .seconds(5)
    ) throws -> Response {
        let fd = socket(AF_INET, streamSocket, 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        defer { close(fd) }
        let (seconds, attoseconds) = timeout.components
        var limit = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect to port \(port): errno \(errno)") }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if let body { head += "Content-Type: application/json; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n" }
        let request = Array((head + "\r\n" + (body ?? "")).utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else {
            throw Failure(description: "send: errno \(errno)")
        }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            guard count > 0 else { throw Failure(description: "recv: errno \(errno)") }
            received += chunk[0..<count]
            // Some servers (chromedriver) keep the connection open: stop at Content-Length.
            if let expected = Self.completeLength(received), received.count >= expected { break }
        }
        let text = String(decoding: received, as: UTF8.self)
        guard let headerEnd = text.range(of: "\r\n\r\n") else { throw Failure(description: "no HTTP header in \(text.prefix(200))") }
        let statusLine = text[..<headerEnd.lowerBound].split(separator: "\r\n").first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw Failure(description: "bad status line \(statusLine)")
        }
        let headers = text[..<headerEnd.lowerBound].lowercased()
        let rest = String(text[headerEnd.upperBound...])
        return Response(status: status, body: headers.contains("transfer-encoding: chunked") ? dechunk(rest) : rest)
    }

    /// Header plus body length, once the header is in and names a Content-Length.
    static func completeLength(_ received: [UInt8]) -> Int? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard received.count >= 4,
            let end = (0...(received.count - 4)).first(where: { Array(received[$0..<$0 + 4]) == separator })
        else { return nil }
        let header = String(decoding: received[..<end], as: UTF8.self).lowercased()
        for line in header.split(separator: "\r\n") where line.hasPrefix("content-length:") {
            if let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) { return end + 4 + length }
        }
        return nil
    }

    /// The body of a `Transfer-Encoding: chunked` answer.
    static func dechunk(_ text: String) -> String {
        var bytes = Substring(text)
        var out = ""
        while let lineEnd = bytes.range(of: "\r\n"), let size = Int(bytes[..<lineEnd.lowerBound].split(separator: ";")[0], radix: 16), size > 0 {
            let start = lineEnd.upperBound
            let utf8 = bytes[start...].utf8
            let end = utf8.index(utf8.startIndex, offsetBy: min(size, utf8.count))
            out += String(bytes[start..<end])
            bytes = bytes[end...].dropFirst(2)
        }
        return out
    }

    /// A port that was free a moment ago (bound to port 0, then closed): good enough for tests.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, streamSocket, 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw Failure(description: "bind: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The value of an unlabelled sample in a Prometheus text exposition.
    public static func sample(_ name: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
