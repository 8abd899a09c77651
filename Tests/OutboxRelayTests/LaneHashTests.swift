import Testing
@testable import Outbox

@Suite struct LaneHashTests {
    @Test func md5MatchesRFC1321Vectors() {
        func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
        #expect(hex(MD5.digest(Array("".utf8))) == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(hex(MD5.digest(Array("abc".utf8))) == "900150983cd24fb0d6963f7d28e17f72")
        #expect(hex(MD5.digest(Array("message digest".utf8))) == "f96b697d7cb7938d525a2f31aaf161d0")
        let long = String(repeating: "1234567890", count: 8)
        #expect(hex(MD5.digest(Array(long.utf8))) == "57edf4a22be3c955ac49da2e2107b67a")
    }

    /// Values computed by PostgreSQL: `('x' || substr(md5(key), 1, 8))::bit(32)::bigint % 256`.
    /// If these change, every producer and relay disagree about lanes: never change them.
    @Test func lanesAreStableAcrossReleases() {
        #expect(LaneHash.lane(forKey: "order-1") == 169)
        #expect(LaneHash.lane(forID: 513) == 1)
        for key in ["a", "customer-42", "ключ", ""] {
            let lane = LaneHash.lane(forKey: key)
            #expect((0..<256).contains(lane))
            #expect(LaneHash.lane(forKey: key) == lane)
        }
    }
}

import Foundation
