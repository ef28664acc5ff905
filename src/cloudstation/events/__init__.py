"""The one durable path of every event: contract → outbox → publisher → JetStream.

- :mod:`cloudstation.events.contract`: subjects, payloads, headers, validation (the wire contract).
- :mod:`cloudstation.events.outbox`: the SQLite journal every event is written to before publishing.
- :mod:`cloudstation.events.publisher`: the only code that talks to NATS (acks, flush, retry, barriers).
- :mod:`cloudstation.events.jetstream`: the JetStream stream (setup and check).
"""
