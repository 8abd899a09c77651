import ArgumentParser

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check the effective configuration, or print the reference of every setting.",
        subcommands: [ConfigCheckCommand.self, ConfigReferenceCommand.self])
}
