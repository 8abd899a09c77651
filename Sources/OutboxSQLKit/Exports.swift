// Applications import this module alone: the writer and the message come with it.
@_exported import Outbox
