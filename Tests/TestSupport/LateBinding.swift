import Synchronization

/// A value set once after the object that needs it was made: a NIO server's channel initializer is
/// written before the server object exists (it is made from the bound channel), so the handlers
/// reach that object through this.
final class LateBinding<Value: Sendable>: Sendable {
    private let stored = Mutex<Value?>(nil)

    var value: Value? { stored.withLock { $0 } }

    func set(_ value: Value) { stored.withLock { $0 = value } }
}
