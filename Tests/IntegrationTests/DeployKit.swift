import Foundation
import Yams

/// The files under `deploy/`, read and parsed for `DeployKitTests`: YAML documents, the relay
/// command lines they contain (compose commands, Kubernetes args, systemd ExecStart, Dockerfile
/// CMD), and the names of settings and metrics they mention.
enum DeployKit {
    /// The repository root, found from this file's path (Tests/IntegrationTests/DeployKit.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let deploy = root.appendingPathComponent("deploy")

    struct Failure: Error, CustomStringConvertible { var description: String }

    /// Every regular file under deploy/ whose name ends with one of `extensions` (all files when empty).
    static func files(_ extensions: Set<String> = []) -> [URL] {
        guard let walker = FileManager.default.enumerator(at: deploy, includingPropertiesForKeys: [.isRegularFileKey]) else {
            return []
        }
        return walker.compactMap { $0 as? URL }
            .filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }
            .filter { extensions.isEmpty || extensions.contains($0.pathExtension) }
            .sorted { $0.path < $1.path }
    }

    static func text(_ relativePath: String) throws -> String {
        try String(contentsOf: deploy.appendingPathComponent(relativePath), encoding: .utf8)
    }

    static func relative(_ url: URL) -> String {
        String(url.standardizedFileURL.path.dropFirst(root.standardizedFileURL.path.count + 1))
    }

    /// All YAML documents of a file (Kubernetes files may hold several, separated by `---`).
    static func documents(_ yaml: String) throws -> [Any] {
        var sequence = try Yams.load_all(yaml: yaml)
        var documents: [Any] = []
        while let document = sequence.next() { documents.append(document) }
        if let error = sequence.error { throw error }
        return documents
    }

    static func document(_ relativePath: String) throws -> [String: Any] {
        guard let document = try documents(text(relativePath)).first as? [String: Any] else {
            throw Failure(description: "\(relativePath): the first document is not a mapping")
        }
        return document
    }

    /// Kubernetes objects of every manifest under deploy/kubernetes, by kind.
    static func kubernetesObjects() throws -> [(file: String, object: [String: Any])] {
        try files(["yaml", "yml"]).filter { $0.path.contains("/kubernetes/") }.flatMap { url in
            try documents(String(contentsOf: url, encoding: .utf8)).compactMap { $0 as? [String: Any] }
                .filter { $0["kind"] != nil && $0["apiVersion"] != nil }
                .map { (relative(url), $0) }
        }
    }

    static func kubernetesObject(kind: String, name: String) throws -> [String: Any] {
        guard
            let found = try kubernetesObjects().first(where: {
                $0.object["kind"] as? String == kind && ($0.object["metadata"] as? [String: Any])?["name"] as? String == name
            })
        else { throw Failure(description: "no \(kind) \(name) under deploy/kubernetes") }
        return found.object
    }

    /// `object[a][b]...`, through mappings and (with integer keys) sequences.
    static func value(_ object: Any?, _ path: Any...) -> Any? {
        var current = object
        for key in path {
            switch key {
            case let name as String: current = (current as? [String: Any])?[name]
            case let index as Int:
                guard let list = current as? [Any], list.indices.contains(index) else { return nil }
                current = list[index]
            default: return nil
            }
        }
        return current
    }

    /// A relay command line found in a deploy file: the arguments after the executable.
    struct RelayCommand: CustomStringConvertible {
        var source: String
        var arguments: [String]

        /// Leading words before the first option: `run`, `migrate`, `dlq list`, ...
        var subcommand: [String] { Array(arguments.prefix { !$0.hasPrefix("-") }) }
        /// `--name` of every option, without `=value`.
        var flags: [String] {
            arguments.filter { $0.hasPrefix("--") }.map { String($0.split(separator: "=", maxSplits: 1)[0]) }
        }
        var description: String { "\(source): outbox-relay \(arguments.joined(separator: " "))" }
    }

    /// The image the Kubernetes manifests and the compose file give the relay.
    static let kubernetesImage = "outbox-relay"
    static let composeImage = "outbox-relay:dev"

    static func relayCommands() throws -> [RelayCommand] {
        var commands: [RelayCommand] = []
        let compose = try document("compose/compose.yaml")
        for (name, service) in (compose["services"] as? [String: Any] ?? [:]) {
            guard value(service, "image") as? String == composeImage, let command = value(service, "command") as? [Any] else { continue }
            commands.append(RelayCommand(source: "compose service \(name)", arguments: command.map { "\($0)" }))
        }
        for (file, object) in try kubernetesObjects() {
            let containers = value(object, "spec", "template", "spec", "containers") as? [Any] ?? []
            for case let container as [String: Any] in containers where container["image"] as? String == kubernetesImage {
                commands.append(RelayCommand(source: "\(file) \(container["name"] ?? "")", arguments: (container["args"] as? [Any] ?? []).map { "\($0)" }))
            }
        }
        for line in try text("systemd/outbox-relay.service").split(separator: "\n") where line.hasPrefix("ExecStart=") {
            let words = line.dropFirst("ExecStart=".count).split(separator: " ").map(String.init)
            commands.append(RelayCommand(source: "systemd ExecStart", arguments: Array(words.dropFirst())))
        }
        for line in try text("docker/Dockerfile").split(separator: "\n") where line.hasPrefix("CMD ") {
            let array = try JSONSerialization.jsonObject(with: Data(line.dropFirst(4).utf8)) as? [String] ?? []
            commands.append(RelayCommand(source: "Dockerfile CMD", arguments: array))
        }
        return commands
    }

    /// Every distinct match of `pattern` in `text`.
    static func matches(of pattern: String, in text: String) -> Set<String> {
        let regex = try! NSRegularExpression(pattern: pattern)
        let range = NSRange(text.startIndex..., in: text)
        return Set(regex.matches(in: text, range: range).compactMap { Range($0.range, in: text).map { String(text[$0]) } })
    }

    /// Metric names of every sample line in a Prometheus text exposition.
    static func exportedMetricNames(_ exposition: String) -> Set<String> {
        Set(
            exposition.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
                line.split(whereSeparator: { $0 == "{" || $0 == " " }).first.map(String.init)
            })
    }
}
