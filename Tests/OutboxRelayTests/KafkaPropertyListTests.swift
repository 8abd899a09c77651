import Testing
@testable import OutboxRelay

/// `OUTBOX_KAFKA_PROPERTIES` and `--kafka-property`: commas inside values, quotes, escapes, and
/// errors that never show a value.
@Suite struct KafkaPropertyListTests {
    private func parse(_ text: String) throws -> [String: String] {
        Dictionary(try KafkaPropertyList.parse(text).map { ($0.name, $0.value) }) { $1 }
    }

    @Test func commasAndNewlinesSeparateEntries() throws {
        #expect(try parse("acks=all,linger.ms=5") == ["acks": "all", "linger.ms": "5"])
        #expect(try parse(" acks = all \n\n linger.ms=5 , compression.type=zstd\n") == ["acks": "all", "linger.ms": "5", "compression.type": "zstd"])
        #expect(try parse("") == [:])
        #expect(try parse("client.id=") == ["client.id": ""])
    }

    /// librdkafka's list values and secrets keep their commas: a comma only starts an entry before `name=`.
    @Test func aCommaNotFollowedByANameAndEqualsBelongsToTheValue() throws {
        #expect(try parse("debug=broker,topic,msg") == ["debug": "broker,topic,msg"])
        #expect(try parse("sasl.password=ab,cd") == ["sasl.password": "ab,cd"])
        #expect(try parse("ssl.cipher.suites=A,B,acks=all") == ["ssl.cipher.suites": "A,B", "acks": "all"])
        #expect(try parse("sasl.password=a=b=c") == ["sasl.password": "a=b=c"])
    }

    @Test func escapesAndQuotesKeepAnythingInAValue() throws {
        // `ab,x=y` would otherwise end the password at the comma.
        #expect(try parse(#"sasl.password=ab\,x=y,acks=all"#) == ["sasl.password": "ab,x=y", "acks": "all"])
        #expect(try parse(#"sasl.password=back\\slash"#) == ["sasl.password": #"back\slash"#])
        #expect(try parse(#"sasl.password="ab,x=y",acks=all"#) == ["sasl.password": "ab,x=y", "acks": "all"])
        #expect(try parse(#"sasl.password="a\"b\\c" , acks=all"#) == ["sasl.password": #"a"b\c"#, "acks": "all"])
        #expect(try parse("sasl.password=\"two\nlines\"") == ["sasl.password": "two\nlines"])
        // A backslash before anything else is itself.
        #expect(try parse(#"ssl.ca.location=C:\certs\ca.pem"#) == ["ssl.ca.location": #"C:\certs\ca.pem"#])
    }

    @Test func malformedEntriesNameTheirPositionNeverTheirValue() {
        for (text, expected) in [
            ("acks=all\nnonsense", "entry 2 is not name=value"),
            ("=s3cr3t", "entry 1 is not name=value"),
            ("sasl.password=\"s3cr3t", "entry 1 (sasl.password): the quoted value has no closing"),
            ("sasl.password=\"s3cr3t\" oops", "entry 1 (sasl.password): text after the closing quote"),
            ("sasl pass=s3cr3t", "entry 1: \"sasl pass\" is not a property name"),
        ] {
            #expect {
                _ = try KafkaPropertyList.parse(text)
            } throws: { error in
                let problem = (error as? KafkaPropertyList.ParseError)?.problem ?? ""
                return problem.hasPrefix(expected) && !problem.contains("s3cr3t")
            }
        }
    }

    @Test func aFlagIsOneEntryTakenVerbatim() throws {
        #expect(try KafkaPropertyList.parseFlag("sasl.password=ab,x=y") == ("sasl.password", "ab,x=y"))
        #expect(try KafkaPropertyList.parseFlag(#"sasl.password="quoted"\,"#) == ("sasl.password", #""quoted"\,"#))
        #expect(throws: KafkaPropertyList.ParseError.self) { try KafkaPropertyList.parseFlag("s3cr3t") }
    }

    /// Through the settings, as the relay reads them: the error names the setting, not the secret.
    @Test func settingsKeepCommasInSecretsAndNeverEchoThem() throws {
        let settings = try RelaySettings(values: [
            "OUTBOX_DATABASE_URL": "postgres://u@h/db", "OUTBOX_KAFKA_PROPERTIES": "sasl.password=ab,cd,security.protocol=SASL_SSL",
        ])
        #expect(settings.kafkaProperties == ["sasl.password": "ab,cd", "security.protocol": "SASL_SSL"])
        #expect(!"\(settings)".contains("ab,cd"))
        #expect {
            _ = try RelaySettings(values: ["OUTBOX_DATABASE_URL": "postgres://u@h/db", "OUTBOX_KAFKA_PROPERTIES": "sasl.password=\"s3cr3t"])
        } throws: { error in
            let text = "\(error)"
            return text.contains("OUTBOX_KAFKA_PROPERTIES") && !text.contains("s3cr3t")
        }
    }
}
