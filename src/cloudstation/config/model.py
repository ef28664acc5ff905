"""The typed model of a loaded ``cloudstation.hcl``: project, variables, apps and their components.

Plugin configuration stays raw here (resolved Python values with their source locations); the plugins
layer validates it and reports problems through :meth:`Component.error`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from cloudstation.config.locations import Location, config_error
from cloudstation.config.values import Value, VarType
from cloudstation.errors import ConfigError
from cloudstation.vocabulary import Step


@dataclass(frozen=True, slots=True)
class Variable:
    """A resolved ``variable "NAME" {...}`` block. ``value`` is hidden from ``repr``."""

    name: str
    type: VarType
    value: Value = field(repr=False)
    source: str  # "env:<NAME>" or "default"
    sensitive: bool
    description: str
    env: tuple[str, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class Setting:
    """One plugin-config attribute: its resolved value and where it was written.

    ``sensitive`` is true when the value was computed from a sensitive variable.
    """

    name: str
    value: Value = field(repr=False)
    location: Location
    sensitive: bool = False


@dataclass(frozen=True, slots=True)
class Component:
    """A ``build``/``registry``/``deploy``/``release`` block: the plugin it ``use``s and its raw config."""

    app: str
    kind: Step
    use: str
    settings: Mapping[str, Setting]
    location: Location
    use_location: Location

    @property
    def config(self) -> dict[str, Value]:
        """The plugin config as plain values, in source order (``use`` excluded)."""
        return {name: setting.value for name, setting in self.settings.items()}

    def location_of(self, attribute: str | None = None) -> Location:
        """Where ``attribute`` (or ``use``) was written; the block itself when absent or ``None``."""
        if attribute == "use":
            return self.use_location
        if attribute is not None and attribute in self.settings:
            return self.settings[attribute].location
        return self.location

    def error(self, message: str, attribute: str | None = None) -> ConfigError:
        """A located ``ConfigError`` about this component, e.g. for the plugins layer.

        ``cloudstation.hcl:11: app "web": build: attribute "tag": must be a string``
        (``attribute`` omitted: ``cloudstation.hcl:10: app "web": build: <message>``).
        """
        context = [f'app "{self.app}"', self.kind]
        if attribute is not None:
            context.append(f'attribute "{attribute}"')
        return config_error(self.location_of(attribute), message, *context)


@dataclass(frozen=True, slots=True)
class App:
    """An ``app "NAME" {...}`` block."""

    name: str
    path: str
    labels: Mapping[str, str]
    env: Mapping[str, str]  # from config { env = {...} }
    build: Component
    deploy: Component
    location: Location
    registry: Component | None = None
    release: Component | None = None

    def components(self) -> Iterator[Component]:
        """The present components in lifecycle order: build, registry, deploy, release."""
        for component in (self.build, self.registry, self.deploy, self.release):
            if component is not None:
                yield component

    def component(self, kind: Step) -> Component | None:
        """The component of ``kind``, or ``None`` when the app has none."""
        found: Component | None = getattr(self, kind)
        return found


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    """A whole validated ``cloudstation.hcl``."""

    file: str
    project: str
    variables: Mapping[str, Variable]
    apps: Mapping[str, App]  # in file order
    sensitive_values: frozenset[str] = field(repr=False)
    """Every resolved sensitive value (and strings derived from them by lower/upper), for redaction."""

    def app(self, name: str) -> App:
        """The app called ``name``; ``ConfigError`` naming the known apps otherwise."""
        if name in self.apps:
            return self.apps[name]
        known = ", ".join(f'"{app}"' for app in self.apps)
        raise config_error(Location(self.file), f'no app "{name}" (apps: {known})')
