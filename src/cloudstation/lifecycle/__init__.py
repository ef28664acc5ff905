"""The lifecycle engine: an app's build → registry → deploy → release through its plugins, with the
deployment's events published in the contract's order."""
