// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "outbox-relay",
    platforms: [.macOS(.v15)],
    products: [
        // What applications link to enqueue inside their own transactions.
        .library(name: "Outbox", targets: ["Outbox"]),
        // The relay itself, for embedding in a service or driving from tests.
        .library(name: "OutboxRelay", targets: ["OutboxRelay"]),
        // The public wire contract consumers decode.
        .library(name: "OutboxEnvelope", targets: ["OutboxEnvelope"]),
        // Enqueue through SQLKit (Vapor/Fluent's `req.db`), inside the application's transaction.
        .library(name: "OutboxSQLKit", targets: ["OutboxSQLKit"]),
        // The operator console (`outbox-relay console`): fleet and dead letters in a browser.
        .library(name: "OutboxConsole", targets: ["OutboxConsole"]),
        .executable(name: "outbox-relay", targets: ["outbox-relay"]),
        .executable(name: "outbox-loadtest", targets: ["outbox-loadtest"]),
    ],
    dependencies: [
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Layering of flags, environment and a YAML/JSON file; the YAML trait brings in Yams.
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: ["JSON", "YAML"]),
        // Spans (the API postgres-nio and hummingbird already use, so nothing new to build).
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // The binary's OTLP export. Its OTLP/HTTP exporter only: the gRPC one would build grpc-swift
        // (minutes of every clean build) for a transport every collector also offers over HTTP.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        // OutboxSQLKit only; PostgresKit for its tests (a SQLDatabase over the real PostgreSQL).
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        // Load test only: commit → consume latency percentiles.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        // Tests only: DeployKitTests parses the YAML under deploy/.
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        // Tests only: librdkafka's mock cluster, for deterministic broker faults.
        .systemLibrary(name: "CRdKafkaMock", path: "Tests/CRdKafkaMock"),
        .target(
            name: "OutboxEnvelope",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .target(
            name: "Outbox",
            dependencies: [
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "OutboxRelay",
            dependencies: [
                "CRdKafka",
                "Outbox",
                "OutboxEnvelope",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "OutboxSQLKit",
            dependencies: [
                "Outbox",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "OutboxConsole",
            dependencies: [
                "OutboxRelay",
                "Outbox",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "outbox-relay",
            dependencies: [
                "OutboxRelay",
                "OutboxConsole",
                "Outbox",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .executableTarget(
            name: "outbox-loadtest",
            dependencies: [
                "OutboxRelay",
                "Outbox",
                "OutboxEnvelope",
                "OutboxTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "loadtest/Sources/outbox-loadtest"
        ),
        .testTarget(
            name: "OutboxRelayTests",
            dependencies: ["OutboxRelay", "OutboxConsole", "Outbox", "OutboxEnvelope", "CRdKafka"]
        ),
        // Helpers the integration tests and the load test share (not a product): the fault proxy,
        // child processes, the HTTP scrape, the ledger.
        .target(
            name: "OutboxTestSupport",
            dependencies: [
                "OutboxRelay", "OutboxEnvelope",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "OutboxRelay", "OutboxConsole", "Outbox", "OutboxEnvelope", "CRdKafka", "CRdKafkaMock", "OutboxTestSupport",
                "OutboxSQLKit",
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
    ]
)
