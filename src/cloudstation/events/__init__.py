"""The one durable path of every event: contract → outbox → publisher → JetStream, and what feeds it.

The contract (subjects, payloads, headers, validation), the SQLite outbox every event is journaled to
before it is published, the publisher (the only code that talks to NATS), a deployment's log turned into
events, the JetStream stream's setup and check, and the state dir's files. Each module's docstring says
what it owns; docs/ARCHITECTURE.md's Rooms table lists them with what each may import.
"""
