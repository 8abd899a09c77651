import Configuration
import Synchronization

/// Records which provider answered each lookup, so `config check` and error messages can say
/// whether a value came from a flag, the environment or the file. swift-configuration reports
/// every access with the provider results in precedence order; the first one holding a value won.
final class ProvenanceRecorder: AccessReporter, Sendable {
    private let sources = Mutex<[String: SettingSource]>([:])

    func report(_ event: AccessEvent) {
        guard event.conversionError == nil, case .success(.some) = event.result else { return }
        for provider in event.providerResults {
            guard case .success(let lookup) = provider.result, lookup.value != nil else { continue }
            let source = Self.source(ofProviderNamed: provider.providerName)
            sources.withLock { $0[event.metadata.key.components.joined(separator: ".")] = source }
            return
        }
    }

    func source(of key: String) -> SettingSource? {
        sources.withLock { $0[key] }
    }

    /// Provider names are swift-configuration's descriptions, e.g. `InMemoryProvider[flags]`,
    /// `KeyMappingProvider[upstream: EnvironmentVariablesProvider]`, `FileProvider<YAMLSnapshot>`.
    static func source(ofProviderNamed name: String) -> SettingSource {
        if name.contains("[\(SettingsLoader.ProviderName.flags)]") { return .flag }
        if name.contains("Environment") || name.contains(SettingsLoader.ProviderName.environmentProperties) { return .env }
        return .file
    }
}
