"""The builtin plugins, registered in cs's own package metadata like any third-party plugin."""
