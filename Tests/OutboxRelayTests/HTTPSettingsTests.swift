import Testing
@testable import OutboxRelay

/// `OUTBOX_HTTP_ADDRESS`: loopback by default, `off`, and clear errors naming the setting.
@Suite struct HTTPSettingsTests {
    func settings(_ http: String?) throws(ConfigurationError) -> RelaySettings {
        var values = ["OUTBOX_DATABASE_URL": "postgres://relay@127.0.0.1:5432/app"]
        values["OUTBOX_HTTP_ADDRESS"] = http
        return try RelaySettings(values: values, defaultRelayID: "test-relay")
    }

    @Test func defaultsToLoopback() throws {
        #expect(try settings(nil).httpAddress == HTTPAddress(host: "127.0.0.1", port: 9464))
        #expect(try settings("  ").httpAddress == HTTPAddress(host: "127.0.0.1", port: 9464))
        #expect(RelaySettings.defaults.contains { $0.name == "OUTBOX_HTTP_ADDRESS" && $0.value == "127.0.0.1:9464" })
    }

    @Test func parsesAddressesAndOff() throws {
        #expect(try settings("0.0.0.0:8080").httpAddress == HTTPAddress(host: "0.0.0.0", port: 8080))
        #expect(try settings("localhost:1").httpAddress == HTTPAddress(host: "localhost", port: 1))
        #expect(try settings("[::1]:9464").httpAddress == HTTPAddress(host: "::1", port: 9464))
        #expect(try settings("[::1]:9464").httpAddress?.description == "[::1]:9464")
        #expect(try settings("off").httpAddress == nil)
        #expect(try settings("OFF").httpAddress == nil)
    }

    @Test(arguments: ["9464", "127.0.0.1", "127.0.0.1:", ":9464", "127.0.0.1:0", "127.0.0.1:65536", "host:http", "::1:9464", "[::1]9464", "a b:80"])
    func rejectsMalformedAddresses(_ text: String) {
        #expect {
            _ = try settings(text)
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.setting == "OUTBOX_HTTP_ADDRESS" && error.description.contains("host:port")
                && error.description.contains("off")
        }
    }
}
