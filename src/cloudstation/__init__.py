"""cs: the CloudStation deployment orchestrator.

Runs a deployment job (fetch source, build, push, deploy, release, or destroy) and reports every step to
the platform as events on NATS JetStream: an event is either stored and acknowledged by JetStream, or
kept on local disk and retried; never silently lost or duplicated.

Layers (imports flow one way): ``cli`` -> ``dispatch`` -> ``lifecycle`` -> ``plugins``; everything may
import ``events``; ``events`` imports nothing of ours but ``errors``.
"""

__version__ = "0.1.0"
