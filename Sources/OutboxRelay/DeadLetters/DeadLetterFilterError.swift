/// A `dlq` filter option that cannot be used as given. The message names the option, repeats the
/// offending text and shows what a valid value looks like, so the operator can fix the command
/// line without reading the docs. Nothing has been read or changed when this is thrown.
public struct DeadLetterFilterError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The command-line option, e.g. `--since`.
    public var option: String
    public var problem: String

    public init(option: String, problem: String) {
        self.option = option
        self.problem = problem
    }

    /// The options that select dead letters; mistakes in the others (`--to-topic`, `--yes`, …) are
    /// not filter mistakes and are reported as invalid options.
    static let filterOptions: Set<String> = ["--topic", "--key", "--reason", "--id", "--since", "--until", "--status", "--older-than"]

    public var description: String {
        "\(Self.filterOptions.contains(option) ? "invalid filter" : "invalid option"): \(option): \(problem)"
    }
}
