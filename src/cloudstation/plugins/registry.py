"""The plugin registry: plugins are found through the ``cloudstation.plugins`` entry-point group.

The builtins are registered the same way (in cs's own package metadata), so a third-party package
adds a plugin by declaring an entry point ``name = "module:Class"``; nothing in cs changes. Plugin
classes are imported only when used. :meth:`PluginRegistry.create` hands back an instance typed by the
component Protocols of :mod:`.base` (:data:`~.base.ComponentPlugin`; :class:`~.base.Platform` from
:meth:`~PluginRegistry.create_platform`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

import msgspec

from cloudstation.config.model import Component as ConfigComponent
from cloudstation.errors import ConfigError
from cloudstation.plugins.base import (
    Builder,
    ComponentPlugin,
    Platform,
    PluginConfig,
    Registry,
    ReleaseManager,
    components_of,
)
from cloudstation.vocabulary import Step

ENTRY_POINT_GROUP = "cloudstation.plugins"

_FIELD_RE = re.compile(r"`\$\.([A-Za-z0-9_]+)")
_UNKNOWN_RE = re.compile(r"unknown field `([^`]+)`")
_MISSING_RE = re.compile(r"missing required field `([^`]+)`")


@dataclass(frozen=True)
class PluginInfo:
    """What ``cs plugins`` shows about one plugin."""

    name: str
    target: str
    components: list[str]
    fields: list[tuple[str, str, bool]]  # (name, type, required)
    description: str
    distribution: str


class PluginRegistry:
    """Every plugin visible to this process, by name."""

    def __init__(self, eps: list[EntryPoint] | None = None) -> None:
        found = eps if eps is not None else list(entry_points(group=ENTRY_POINT_GROUP))
        self._eps: dict[str, EntryPoint] = {}
        for ep in found:
            self._eps.setdefault(ep.name, ep)  # first on sys.path wins, like imports
        self._classes: dict[str, type] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self._eps)

    def get(self, name: str) -> type:
        """The plugin class registered as ``name`` (imported now); ConfigError if unknown."""
        if name not in self._eps:
            raise ConfigError(f"unknown plugin {name!r} (known: {', '.join(self.names)})")
        if name not in self._classes:
            ep = self._eps[name]
            try:
                cls = ep.load()
            except Exception as exc:
                raise ConfigError(f"plugin {name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}") from None
            if not isinstance(cls, type) or not components_of(cls):
                raise ConfigError(f"plugin {name!r} ({ep.value}) implements no component")
            self._classes[name] = cls
        return self._classes[name]

    def info(self, name: str) -> PluginInfo:
        cls = self.get(name)
        config_type = getattr(cls, "Config", None)
        fields: list[tuple[str, str, bool]] = []
        if config_type is not None:
            for f in msgspec.structs.fields(config_type):
                fields.append((f.encode_name, _type_name(f.type), f.required))
        ep = self._eps[name]
        dist = ep.dist.name if ep.dist is not None else ""
        return PluginInfo(
            name=name,
            target=ep.value,
            components=[c.value for c in components_of(cls)],
            fields=fields,
            description=str(getattr(cls, "description", "") or (cls.__doc__ or "").strip().splitlines()[0]),
            distribution=dist,
        )

    def create(self, block: ConfigComponent) -> ComponentPlugin:
        """Instantiate the plugin a config block ``use``s, with its config validated.

        Errors are located at the block (or the attribute) in ``cloudstation.hcl``.
        """
        if block.use not in self._eps:
            raise block.error(f"unknown plugin {block.use!r} (known: {', '.join(self.names)})", "use")
        try:
            cls = self.get(block.use)
        except ConfigError as exc:
            raise block.error(str(exc), "use") from None
        kind = Step(block.kind)
        if kind not in components_of(cls):
            can = ", ".join(c.value for c in components_of(cls))
            raise block.error(f"plugin {block.use!r} cannot be used as {kind.value} (it provides: {can})", "use")
        config_type: type[PluginConfig] = getattr(cls, "Config", PluginConfig)
        try:
            config = msgspec.convert(block.config, config_type, strict=False)
        except msgspec.ValidationError as exc:
            raise _config_error(block, str(exc), config_type) from None
        plugin: object = cls(config)
        if not isinstance(plugin, Builder | Registry | Platform | ReleaseManager):
            raise block.error(f"plugin {block.use!r} implements no component", "use")
        return plugin

    def create_platform(self, block: ConfigComponent) -> Platform:
        """:meth:`create` for a ``deploy`` block: the plugin as a :class:`~.base.Platform`."""
        plugin = self.create(block)
        if not isinstance(plugin, Platform):
            raise block.error(f"plugin {block.use!r} cannot be used as deploy", "use")
        return plugin


def _config_error(block: ConfigComponent, message: str, config_type: type[PluginConfig]) -> ConfigError:
    if m := _UNKNOWN_RE.search(message):
        takes = ", ".join(f.encode_name for f in msgspec.structs.fields(config_type)) or "no attributes"
        return block.error(f"not an attribute of plugin {block.use!r} (it takes: {takes})", m.group(1))
    if m := _MISSING_RE.search(message):
        return block.error(f"plugin {block.use!r} requires attribute {m.group(1)!r}")
    if m := _FIELD_RE.search(message):
        return block.error(message.split(" - at ", maxsplit=1)[0].replace("`", ""), m.group(1))
    return block.error(message.replace("`", ""))


def _type_name(tp: object) -> str:
    name = getattr(tp, "__name__", None)
    if name and not getattr(tp, "__args__", None):
        return str(name)
    return str(tp).replace("typing.", "")
