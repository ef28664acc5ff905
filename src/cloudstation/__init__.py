"""cs: the CloudStation deployment orchestrator.

Runs a deployment job (fetch source, build, push, deploy, release, or destroy) and reports every step to
the platform as events on NATS JetStream: an event is either stored and acknowledged by JetStream, or
kept on local disk and retried; never silently lost or duplicated.

Layers (imports flow one way): ``cli`` -> ``dispatch`` -> ``lifecycle`` -> ``plugins`` -> ``events`` ->
``errors``. The Rooms table of docs/ARCHITECTURE.md says what each room and module may import, and
tests/test_architecture.py enforces it.
"""

__version__ = "0.1.0"
