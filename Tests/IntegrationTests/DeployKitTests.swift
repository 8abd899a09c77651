import Foundation
import Outbox
import OutboxConsole
import OutboxRelay
import OutboxTestSupport
import Testing

/// The operations kit under deploy/ cannot be run here (no container engine), so it is checked
/// against what can run: every file parses, every flag and `OUTBOX_*` setting it uses is one the
/// real binary knows, every metric the dashboard and the alerts query is one a real relay exports,
/// the probes hit real endpoints, and the stop timeouts outlast the relay's graceful shutdown.
@Suite(.serialized) struct DeployKitTests {
    @Test func everyYAMLFileParses() throws {
        let files = DeployKit.files(["yaml", "yml"])
        #expect(files.count >= 12, "deploy/ lost YAML files: \(files.map(DeployKit.relative))")
        for file in files {
            let documents = try DeployKit.documents(String(contentsOf: file, encoding: .utf8))
            #expect(!documents.isEmpty, "\(DeployKit.relative(file)) holds no YAML document")
            for document in documents {
                #expect(document is [String: Any], "\(DeployKit.relative(file)): every document is a mapping")
            }
        }
    }

    @Test func everyJSONFileParses() throws {
        let files = DeployKit.files(["json"])
        #expect(!files.isEmpty, "the Grafana dashboard is missing")
        for file in files {
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: file))
            let panels = (object as? [String: Any])?["panels"] as? [Any] ?? []
            #expect(panels.count >= 10, "\(DeployKit.relative(file)): a dashboard with its panels")
        }
    }

    @Test func everyFlagIsOneTheBinaryKnows() async throws {
        let commands = try DeployKit.relayCommands()
        // compose: migrate + 3 relays; kubernetes: Job + Deployment; systemd; Dockerfile.
        #expect(commands.count >= 8, "\(commands)")
        #expect(commands.contains { !$0.flags.isEmpty }, "no flags found: the extraction is broken")
        let environment = ChildProcess.environment([:])
        for command in commands {
            #expect(!command.subcommand.isEmpty, "\(command): no subcommand")
            let help = try await ChildProcess.runRelay(command.subcommand + ["--help"], environment: environment, timeout: .seconds(30))
            #expect(help.code == 0, "\(command): `outbox-relay \(command.subcommand.joined(separator: " ")) --help` failed: \(help.stderr)")
            for flag in command.flags {
                let known = help.stdout.contains("\(flag) ") || help.stdout.contains("\(flag)\n")
                #expect(known, "\(command): \(flag) is not an option of `outbox-relay \(command.subcommand.joined(separator: " "))`")
            }
        }
    }

    @Test func everyEnvironmentVariableIsAKnownSetting() throws {
        var used: [String: Set<String>] = [:]
        for file in DeployKit.files() {
            for name in DeployKit.matches(of: "OUTBOX_[A-Z0-9_]+", in: try String(contentsOf: file, encoding: .utf8)) {
                used[name, default: []].insert(DeployKit.relative(file))
            }
        }
        #expect(used.count >= 8, "deploy/ uses too few settings to be a kit: \(used.keys.sorted())")
        for (name, files) in used.sorted(by: { $0.key < $1.key }) {
            #expect(
                RelaySettings.knownNames.contains(name) || ConsoleSettings.environmentNames.contains(name),
                "\(name) (in \(files.sorted())) is not a setting of outbox-relay")
        }
    }

    @Test func theRuntimeImageHasLibrdkafkaAtLeast2_2() throws {
        let dockerfile = try DeployKit.text("docker/Dockerfile")
        let lines = dockerfile.split(separator: "\n").map(String.init)
        let stages = lines.filter { $0.hasPrefix("FROM ") }
        #expect(stages.count >= 2, "multi-stage build")
        let runtime = try #require(stages.last)
        // Resolve `FROM ${ARG}` through the ARG default.
        var image = String(runtime.dropFirst(5).split(separator: " ")[0])
        if image.hasPrefix("${"), image.hasSuffix("}") {
            let argument = String(image.dropFirst(2).dropLast())
            image = try #require(
                lines.first { $0.hasPrefix("ARG \(argument)=") }.map { String($0.dropFirst("ARG \(argument)=".count)) },
                "ARG \(argument) has no default")
        }
        #expect(!image.contains("bookworm"), "runtime image \(image): Debian bookworm's librdkafka is 2.0.2, below the 2.2 the relay needs")
        #expect(image.hasPrefix("debian:trixie") || image.hasPrefix("debian:forky"), "runtime image \(image) is not one known to ship librdkafka >= 2.2")
        let runtimeStage = try #require(dockerfile.components(separatedBy: runtime).last)
        #expect(runtimeStage.contains("librdkafka1"), "the runtime stage installs librdkafka")
        #expect(runtimeStage.contains("USER 10001"), "the runtime stage runs as non-root")
        #expect(runtimeStage.contains("ENV OUTBOX_HTTP_ADDRESS=0.0.0.0:9464") && runtimeStage.contains("EXPOSE 9464"))
        #expect(runtimeStage.contains(#"ENTRYPOINT ["outbox-relay"]"#))
        #expect(dockerfile.contains("--product outbox-relay"))
    }

    @Test func everyAlertHasADurationASeverityAndARunbookThatExists() throws {
        let rules = try DeployKit.document("prometheus/alerts.yml")
        let alerts = ((DeployKit.value(rules, "groups", 0, "rules") as? [Any]) ?? []).compactMap { $0 as? [String: Any] }
        let names = Set(alerts.compactMap { $0["alert"] as? String })
        for required in ["OutboxRelayLagHigh", "OutboxRelayDeadLetters", "OutboxRelayNoLanesHeld", "OutboxRelayBrokerDown",
                         "OutboxRelayDatabaseDown", "OutboxRelayDown"] {
            #expect(names.contains(required), "alerts.yml has no \(required)")
        }
        let operations = try String(contentsOf: DeployKit.root.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        let headings = Set(operations.split(separator: "\n").filter { $0.hasPrefix("#") }.map {
            $0.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces).lowercased()
        })
        for alert in alerts {
            let name = alert["alert"] as? String ?? "?"
            #expect(alert["for"] is String, "\(name) has no for: duration")
            #expect(["warning", "critical"].contains(DeployKit.value(alert, "labels", "severity") as? String), "\(name) severity")
            #expect(DeployKit.value(alert, "annotations", "summary") is String, "\(name) summary")
            let runbook = try #require(DeployKit.value(alert, "annotations", "runbook_url") as? String, "\(name) runbook_url")
            let fragment = try #require(runbook.split(separator: "#").last.map(String.init), "\(name): runbook without an anchor")
            #expect(runbook.contains("docs/operations.md#") && headings.contains(fragment), "\(name): \(runbook) has no heading in docs/operations.md")
        }
    }

    /// The stop timeouts must outlast the relay's own bound (RunCommand: graceful shutdown up to the
    /// Kafka message timeout plus a margin, then cancellation), or the relay is killed mid-ack.
    @Test func stopTimeoutsOutlastTheGracefulShutdown() throws {
        let runCommand = try String(
            contentsOf: DeployKit.root.appendingPathComponent("Sources/outbox-relay/RunCommand.swift"), encoding: .utf8)
        let margin = try #require(
            DeployKit.matches(of: #"maximumGracefulShutdownDuration = settings\.kafkaMessageTimeout \+ \.seconds\(\d+\)"#, in: runCommand)
                .first.flatMap { Int(DeployKit.matches(of: #"\d+"#, in: $0).first ?? "") },
            "RunCommand's graceful-shutdown bound changed shape: update this test and the deploy timeouts")
        let cancellation = try #require(
            DeployKit.matches(of: #"maximumCancellationDuration = \.seconds\(\d+\)"#, in: runCommand)
                .first.flatMap { Int(DeployKit.matches(of: #"\d+"#, in: $0).first ?? "") })

        let configMap = try DeployKit.kubernetesObject(kind: "ConfigMap", name: "outbox-relay")
        var settings = (configMap["data"] as? [String: Any] ?? [:]).mapValues { "\($0)" }
        settings["OUTBOX_DATABASE_URL"] = "postgres://check@localhost/check"
        let messageTimeout = try RelaySettings(values: settings).kafkaMessageTimeout.components.seconds
        let bound = Int(messageTimeout) + margin + cancellation

        let deployment = try DeployKit.kubernetesObject(kind: "Deployment", name: "outbox-relay")
        let pod = try #require(DeployKit.value(deployment, "spec", "template", "spec") as? [String: Any])
        let grace = try #require(pod["terminationGracePeriodSeconds"] as? Int)
        let preStop = DeployKit.value(pod, "containers", 0, "lifecycle", "preStop", "sleep", "seconds") as? Int ?? 0
        #expect(grace > preStop + bound, "terminationGracePeriodSeconds \(grace) <= preStop \(preStop) s + shutdown bound \(bound) s")

        // systemd and compose run with the default message timeout (30 s).
        let defaultBound = 30 + margin + cancellation
        let unit = try DeployKit.text("systemd/outbox-relay.service")
        let stopSeconds = try #require(DeployKit.matches(of: #"(?m)^TimeoutStopSec=\d+"#, in: unit).first.flatMap { Int($0.split(separator: "=")[1]) })
        #expect(stopSeconds > defaultBound, "systemd TimeoutStopSec=\(stopSeconds) <= shutdown bound \(defaultBound) s")
        let compose = try DeployKit.document("compose/compose.yaml")
        for (name, service) in compose["services"] as? [String: Any] ?? [:] where name.hasPrefix("relay-") {
            let period = try #require(DeployKit.value(service, "stop_grace_period") as? String, "\(name) has no stop_grace_period")
            let seconds = try #require(DurationParser.parse(period), "\(name): stop_grace_period \(period)").components.seconds
            #expect(seconds > Int64(defaultBound), "compose \(name): stop_grace_period \(period) <= shutdown bound \(defaultBound) s")
        }
    }

    /// A relay whose batch loop wedged fails `/healthz` and exits with status 3 (see
    /// DatabaseFaultTests): every supervisor in the kit must restart it on that exit and probe
    /// liveness on `/healthz`, or the fleet shrinks by one relay for good.
    @Test func everySupervisorRestartsARelayThatExitsNonZero() throws {
        let unit = try DeployKit.text("systemd/outbox-relay.service")
        let restart = unit.split(separator: "\n").first { $0.hasPrefix("Restart=") }.map { String($0.dropFirst("Restart=".count)) }
        #expect(["on-failure", "always", "on-abnormal"].contains(restart ?? ""), "systemd Restart=\(restart ?? "missing")")
        let compose = try DeployKit.document("compose/compose.yaml")
        for (name, service) in compose["services"] as? [String: Any] ?? [:] where name.hasPrefix("relay-") {
            let policy = DeployKit.value(service, "restart") as? String
            #expect(["unless-stopped", "always", "on-failure"].contains(policy ?? ""), "compose \(name) restart: \(policy ?? "missing")")
        }
        let deployment = try DeployKit.kubernetesObject(kind: "Deployment", name: "outbox-relay")
        let policy = DeployKit.value(deployment, "spec", "template", "spec", "restartPolicy") as? String
        #expect(policy == nil || policy == "Always", "a Deployment's pods restart their containers")
        let dockerfile = try DeployKit.text("docker/Dockerfile")
        #expect(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("/healthz"), "the image's HEALTHCHECK asks /healthz")
    }

    @Test func theDeploymentIsHardenedAndProbesTheRelaysPort() throws {
        let deployment = try DeployKit.kubernetesObject(kind: "Deployment", name: "outbox-relay")
        #expect(DeployKit.value(deployment, "spec", "replicas") as? Int == 3)
        let container = try #require(DeployKit.value(deployment, "spec", "template", "spec", "containers", 0) as? [String: Any])
        #expect(DeployKit.value(container, "readinessProbe", "httpGet", "path") as? String == "/readyz")
        #expect(DeployKit.value(container, "livenessProbe", "httpGet", "path") as? String == "/healthz")
        // The probes' named port is the container port the relay listens on (OUTBOX_HTTP_ADDRESS).
        let portName = try #require(DeployKit.value(container, "readinessProbe", "httpGet", "port") as? String)
        #expect(DeployKit.value(container, "livenessProbe", "httpGet", "port") as? String == portName)
        let port = (container["ports"] as? [Any] ?? []).first { DeployKit.value($0, "name") as? String == portName }
        let containerPort = try #require(DeployKit.value(port, "containerPort") as? Int, "no container port named \(portName)")
        let configMap = try DeployKit.kubernetesObject(kind: "ConfigMap", name: "outbox-relay")
        let address = try #require(DeployKit.value(configMap, "data", "OUTBOX_HTTP_ADDRESS") as? String)
        #expect(address == "0.0.0.0:\(containerPort)", "the relay listens on \(address), the probes ask port \(containerPort)")
        #expect(DeployKit.value(container, "lifecycle", "preStop") != nil)
        #expect(DeployKit.value(container, "securityContext", "readOnlyRootFilesystem") as? Bool == true)
        #expect(DeployKit.value(container, "securityContext", "allowPrivilegeEscalation") as? Bool == false)
        #expect(DeployKit.value(deployment, "spec", "template", "spec", "securityContext", "runAsNonRoot") as? Bool == true)
        #expect(DeployKit.value(container, "resources", "limits", "memory") != nil)
        #expect(DeployKit.value(container, "resources", "requests", "memory") != nil)
        // Everything kustomize is told to apply exists, and the placeholder Secret is not among it.
        let kustomization = try DeployKit.document("kubernetes/kustomization.yaml")
        let resources = (kustomization["resources"] as? [Any] ?? []).map { "\($0)" }
        #expect(resources.count >= 5)
        for resource in resources {
            #expect(FileManager.default.fileExists(atPath: DeployKit.deploy.appendingPathComponent("kubernetes/\(resource)").path), "\(resource)")
        }
        #expect(!resources.contains("secret.example.yaml"), "placeholder credentials must never be applied by kustomize")
    }

    @Test func composeRunsThreeRelaysThatPrometheusScrapes() throws {
        let compose = try DeployKit.document("compose/compose.yaml")
        let services = try #require(compose["services"] as? [String: Any])
        let relays = services.filter { $0.key.hasPrefix("relay-") }
        #expect(relays.count == 3)
        let ids = relays.values.compactMap { service -> String? in
            let command = (DeployKit.value(service, "command") as? [Any] ?? []).map { "\($0)" }
            return command.firstIndex(of: "--relay-id").flatMap { command.indices.contains($0 + 1) ? command[$0 + 1] : nil }
        }
        #expect(Set(ids).count == 3, "every relay has its own --relay-id: \(ids)")
        for (name, service) in relays {
            #expect(DeployKit.value(service, "depends_on", "migrate", "condition") as? String == "service_completed_successfully", "\(name)")
        }
        #expect(DeployKit.value(services["migrate"], "command", 0) as? String == "migrate")
        for name in ["postgres", "kafka", "prometheus", "grafana"] {
            #expect(services[name] != nil, "compose has no \(name)")
        }
        let prometheus = try DeployKit.document("prometheus/prometheus.yml")
        let targets = Set((DeployKit.value(prometheus, "scrape_configs", 0, "static_configs", 0, "targets") as? [Any] ?? []).map { "\($0)" })
        let port = (DeployKit.value(relays.first?.value, "environment", "OUTBOX_HTTP_ADDRESS") as? String)?.split(separator: ":").last ?? "?"
        #expect(targets == Set(relays.keys.map { "\($0):\(port)" }), "Prometheus scrapes \(targets)")
        #expect((prometheus["rule_files"] as? [Any] ?? []).contains { "\($0)".hasSuffix("alerts.yml") })
        // Every file the compose services mount exists next to it.
        let composeDirectory = DeployKit.deploy.appendingPathComponent("compose")
        for (name, service) in services {
            for case let volume as String in DeployKit.value(service, "volumes") as? [Any] ?? [] where volume.hasPrefix(".") {
                let source = String(volume.split(separator: ":")[0])
                let path = composeDirectory.appendingPathComponent(source).standardizedFileURL.path
                #expect(FileManager.default.fileExists(atPath: path), "compose \(name) mounts \(source), which does not exist")
            }
        }
    }

    /// Scrapes a real relay: every `outbox_relay_*` name the dashboard and the alert rules use must
    /// be exported, and the dashboard must show every metric the relay exports.
    @Test func dashboardAndAlertsUseExportedMetricsAndProbesHitRealEndpoints() async throws {
        let used = try ["grafana/outbox-relay-dashboard.json", "prometheus/alerts.yml"].reduce(into: [String: Set<String>]()) { used, file in
            used[file] = DeployKit.matches(of: "outbox_relay_[a-z0-9_]+", in: try DeployKit.text(file))
        }
        #expect((used["grafana/outbox-relay-dashboard.json"]?.count ?? 0) >= 12)
        #expect((used["prometheus/alerts.yml"]?.count ?? 0) >= 5)
        let deployment = try DeployKit.kubernetesObject(kind: "Deployment", name: "outbox-relay")
        let container = DeployKit.value(deployment, "spec", "template", "spec", "containers", 0)
        let probes = ["readinessProbe", "livenessProbe"].compactMap { DeployKit.value(container, $0, "httpGet", "path") as? String }
        #expect(probes.count == 2)

        try await OutboxFixture.with { fixture in
            // Enqueued before the relay starts, so its first monitor sample sees the topic and the
            // per-topic gauges exist.
            _ = try await fixture.enqueue((0..<5).map { OutboxMessage(topic: fixture.topic, key: "k-\($0)", payload: "m-\($0)") })
            let port = try HTTPGet.freePort()
            let relay = try ChildProcess(
                ChildProcess.relayBinary, ["run", "--http-address", "127.0.0.1:\(port)", "--poll-interval", "200ms"],
                environment: ChildProcess.environment([
                    "OUTBOX_DATABASE_URL": TestServices.databaseURL, "OUTBOX_KAFKA_BROKERS": TestServices.brokers,
                    "OUTBOX_SCHEMA": fixture.schema.rawValue, "OUTBOX_LOG_LEVEL": "warning",
                ]))
            do {
                try await Self.scrapeAndCheck(relay: relay, port: port, fixture: fixture, used: used, probes: probes)
            } catch {
                relay.signal(SIGTERM)
                _ = await relay.wait(timeout: .seconds(20))
                throw error
            }
            relay.signal(SIGTERM)
            #expect(await relay.wait(timeout: .seconds(30)) == 0, "exit code; stderr: \(relay.standardError.suffix(2000))")
        }
    }

    private static func scrapeAndCheck(
        relay: ChildProcess, port: Int, fixture: OutboxFixture, used: [String: Set<String>], probes: [String]
    ) async throws {
        var exported: Set<String> = []
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let drained = try await fixture.scalar("SELECT count(*) FROM {schema}.messages", as: Int64.self) == 0
            if drained, let metrics = try? HTTPGet.get(port: port, path: "/metrics"), metrics.status == 200 {
                exported = DeployKit.exportedMetricNames(metrics.body)
                if used.values.allSatisfy({ $0.isSubset(of: exported) }) { break }
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(!exported.isEmpty, "no /metrics scraped; relay stderr: \(relay.standardError.suffix(2000))")
        for (file, names) in used.sorted(by: { $0.key < $1.key }) {
            for name in names.sorted() {
                #expect(exported.contains(name), "\(file) uses \(name), which the relay does not export")
            }
        }
        let dashboard = used["grafana/outbox-relay-dashboard.json"] ?? []
        for name in exported where name.hasPrefix("outbox_relay_") {
            let base = ["_bucket", "_sum", "_count"].reduce(name) { $0.hasSuffix($1) ? String($0.dropLast($1.count)) : $0 }
            #expect(dashboard.contains { $0.hasPrefix(base) }, "the dashboard shows nothing of \(name)")
        }
        for path in probes {
            let response = try HTTPGet.get(port: port, path: path)
            #expect(response.status == 200, "the Deployment probes \(path): \(response.status) \(response.body)")
        }
    }
}
