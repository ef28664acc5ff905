"""The ``config/`` room: ``cloudstation.hcl`` → a typed, validated model; located errors; an HCL writer.

Imports nothing of ours except the base modules :mod:`cloudstation.errors` and
:mod:`cloudstation.vocabulary` (the component names). Public API::

    load_config(path, env) -> ProjectConfig
    parse_config(text, filename, env) -> ProjectConfig
    config_error(location, message, *context) -> ConfigError
    hclwriter.dumps(attributes, blocks) -> str
"""

from cloudstation.config.hclwriter import Block, Ref, dumps
from cloudstation.config.loader import DEFAULT_FILENAME, load_config, parse_config
from cloudstation.config.locations import Location, config_error
from cloudstation.config.model import (
    App,
    Component,
    ProjectConfig,
    Setting,
    Variable,
)
from cloudstation.config.values import Value, VarType

__all__ = [
    "DEFAULT_FILENAME",
    "App",
    "Block",
    "Component",
    "Location",
    "ProjectConfig",
    "Ref",
    "Setting",
    "Value",
    "VarType",
    "Variable",
    "config_error",
    "dumps",
    "load_config",
    "parse_config",
]
