"""The ``cs dispatch`` room: params models and validation, the four tasks, signals, timeout, exit codes."""
