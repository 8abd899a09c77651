import Foundation

/// Reads protobuf's wire format without generated code: enough to take apart an OTLP export
/// request in a test (the OTLP message types are not public in swift-otel, and generating them
/// would need the protobuf plugin, minutes of build). Unknown fields are skipped, as protobuf says.
public struct ProtobufFields: Sendable {
    public enum Value: Sendable {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes([UInt8])
        case fixed32(UInt32)
    }

    public private(set) var fields: [(number: Int, value: Value)] = []

    public struct Malformed: Error, CustomStringConvertible {
        public let at: Int
        public var description: String { "malformed protobuf at byte \(at)" }
    }

    public init(_ bytes: [UInt8]) throws {
        var index = 0
        func varint() throws -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard index < bytes.count, shift < 64 else { throw Malformed(at: index) }
                let byte = bytes[index]
                index += 1
                result |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return result }
                shift += 7
            }
        }
        func fixed(_ width: Int) throws -> UInt64 {
            guard index + width <= bytes.count else { throw Malformed(at: index) }
            var result: UInt64 = 0
            for offset in 0..<width { result |= UInt64(bytes[index + offset]) << (8 * UInt64(offset)) }
            index += width
            return result
        }
        while index < bytes.count {
            let tag = try varint()
            let number = Int(tag >> 3)
            switch tag & 7 {
            case 0: fields.append((number, .varint(try varint())))
            case 1: fields.append((number, .fixed64(try fixed(8))))
            case 2:
                let length = Int(try varint())
                guard length >= 0, index + length <= bytes.count else { throw Malformed(at: index) }
                fields.append((number, .bytes(Array(bytes[index..<index + length]))))
                index += length
            case 5: fields.append((number, .fixed32(UInt32(try fixed(4)))))
            default: throw Malformed(at: index)
            }
        }
    }

    /// Every length-delimited value of field `number` (repeated messages, strings, bytes).
    public func bytes(_ number: Int) -> [[UInt8]] {
        fields.compactMap { field in
            guard field.number == number, case .bytes(let value) = field.value else { return nil }
            return value
        }
    }

    public func messages(_ number: Int) throws -> [ProtobufFields] { try bytes(number).map(ProtobufFields.init) }
    public func message(_ number: Int) throws -> ProtobufFields? { try bytes(number).first.map(ProtobufFields.init) }
    public func string(_ number: Int) -> String? { bytes(number).first.map { String(decoding: $0, as: UTF8.self) } }

    public func integer(_ number: Int) -> UInt64? {
        for field in fields where field.number == number {
            switch field.value {
            case .varint(let value), .fixed64(let value): return value
            case .fixed32(let value): return UInt64(value)
            case .bytes: continue
            }
        }
        return nil
    }
}
