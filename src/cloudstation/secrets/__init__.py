"""The secrets room: fetching build secrets (``vault``) and the values a run must redact."""
