"""Loading ``cloudstation.hcl``: the schema (which blocks and attributes exist where) and the model build.

Order of work: parse → resolve every ``variable`` block → evaluate ``project`` → build every ``app``.
The first problem found (in that order, then in file order) is raised as a located ``ConfigError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from cloudstation.config.expressions import Evaluator
from cloudstation.config.locations import Location, config_error
from cloudstation.config.model import (
    App,
    Component,
    ProjectConfig,
    Setting,
    Variable,
)
from cloudstation.config.tree import Body, RawAttribute, RawBlock, parse_tree
from cloudstation.config.values import EvalError, Value, string_leaves, to_text, type_name
from cloudstation.config.variables import resolve_variable
from cloudstation.vocabulary import COMPONENTS, REQUIRED_COMPONENTS, Step

DEFAULT_FILENAME = "cloudstation.hcl"
NAME = re.compile(r"[A-Za-z0-9_-]+")
_NAME_RULE = '(allowed: letters, digits, "_" and "-")'
_APP_BLOCKS = (*COMPONENTS, "config")


def load_config(path: Path, env: Mapping[str, str]) -> ProjectConfig:
    """Read and load the config file at ``path``; errors name the file as given (``path.name`` if short)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise config_error(Location(str(path)), "file not found") from None
    except UnicodeDecodeError:
        raise config_error(Location(str(path)), "file is not valid UTF-8") from None
    except OSError as exc:
        raise config_error(Location(str(path)), f"cannot read file ({exc.strerror})") from None
    return parse_config(text, str(path), env)


def parse_config(text: str, filename: str, env: Mapping[str, str]) -> ProjectConfig:
    """Load config ``text``; ``filename`` is only used in locations. ``env`` feeds variables and ``env()``."""
    return _Loader(filename, env).load(parse_tree(text, filename))


class _Loader:
    def __init__(self, file: str, env: Mapping[str, str]) -> None:
        self.file = file
        self.env = env

    def load(self, top: Body) -> ProjectConfig:
        for attr in top.attributes.values():
            if attr.name != "project":
                raise config_error(attr.location, f'unknown attribute "{attr.name}" (expected "project")')
        for block in top.blocks:
            if block.type not in ("variable", "app"):
                raise config_error(block.location, f'unknown block "{block.type}" (expected "variable" or "app")')
            _labels(block, 1, "NAME")

        variables = self.variables([block for block in top.blocks if block.type == "variable"])
        sensitive_names = frozenset(name for name, var in variables.items() if var.sensitive)
        evaluator = Evaluator(
            self.env, {name: var.value for name, var in variables.items()}, sensitive_names=sensitive_names
        )

        if "project" not in top.attributes:
            raise config_error(Location(self.file), 'missing required attribute "project"')
        project_attr = top.attributes["project"]
        project = _evaluate(evaluator, project_attr)
        if not isinstance(project, str):
            raise config_error(
                project_attr.location, f"expected string, got {type_name(project)}", 'attribute "project"'
            )
        if not NAME.fullmatch(project):
            shown = "" if evaluator.last_read_sensitive else f' "{project}"'
            raise config_error(project_attr.location, f"invalid project name{shown} {_NAME_RULE}")

        apps: dict[str, App] = {}
        for block in top.blocks:
            if block.type != "app":
                continue
            name = block.labels[0]
            if not NAME.fullmatch(name):
                raise config_error(block.location, f'invalid app name "{name}" {_NAME_RULE}')
            if name in apps:
                first = apps[name].location.line
                raise config_error(block.location, f'duplicate app "{name}" (first defined at line {first})')
            apps[name] = self.app(name, block, evaluator)
        if not apps:
            raise config_error(Location(self.file), 'no app block (at least one app "NAME" { ... } is required)')

        sensitive: set[str] = set(evaluator.derived_sensitive)
        for var in variables.values():
            if var.sensitive:
                sensitive.update(leaf for leaf in string_leaves(var.value) if leaf)
        return ProjectConfig(self.file, project, variables, apps, frozenset(sensitive))

    def variables(self, blocks: list[RawBlock]) -> dict[str, Variable]:
        variables: dict[str, Variable] = {}
        for block in blocks:
            name = block.labels[0]
            if name in variables:
                first = variables[name].location.line
                raise config_error(block.location, f'duplicate variable "{name}" (first defined at line {first})')
            _no_blocks(block.body, f'variable "{name}"')
            variables[name] = resolve_variable(name, block.body.attributes, block.location, self.env)
        return variables

    def app(self, name: str, block: RawBlock, evaluator: Evaluator) -> App:
        context = f'app "{name}"'
        body = block.body
        for attr in body.attributes.values():
            if attr.name not in ("path", "labels"):
                raise config_error(
                    attr.location, f'unknown attribute "{attr.name}" (expected "path" or "labels")', context
                )
        seen: dict[str, RawBlock] = {}
        for inner in body.blocks:
            if inner.type not in _APP_BLOCKS:
                expected = ", ".join(f'"{kind}"' for kind in _APP_BLOCKS)
                raise config_error(inner.location, f'unknown block "{inner.type}" (expected {expected})', context)
            if inner.type in seen:
                first = seen[inner.type].location.line
                raise config_error(inner.location, f'duplicate block "{inner.type}" (first at line {first})', context)
            _labels(inner, 0, "", context)
            seen[inner.type] = inner
        for kind in COMPONENTS:
            if kind in REQUIRED_COMPONENTS and kind not in seen:
                raise config_error(block.location, f'missing required block "{kind}"', context)

        path = "."
        if "path" in body.attributes:
            attr = body.attributes["path"]
            value = _evaluate(evaluator, attr, context)
            if not isinstance(value, str) or not value:
                raise config_error(
                    attr.location,
                    f"expected a non-empty string, got {type_name(value)}",
                    context,
                    'attribute "path"',
                )
            path = value
        labels: dict[str, str] = {}
        if "labels" in body.attributes:
            labels = _string_map(evaluator, body.attributes["labels"], context)
        app_env: dict[str, str] = {}
        if "config" in seen:
            app_env = self.app_config(seen["config"], evaluator, context)

        components = {kind: self.component(name, kind, seen[kind], evaluator) for kind in COMPONENTS if kind in seen}
        return App(
            name=name,
            path=path,
            labels=labels,
            env=app_env,
            build=components[Step.BUILD],
            deploy=components[Step.DEPLOY],
            location=block.location,
            registry=components.get(Step.REGISTRY),
            release=components.get(Step.RELEASE),
        )

    def app_config(self, block: RawBlock, evaluator: Evaluator, app_context: str) -> dict[str, str]:
        _no_blocks(block.body, app_context, "config")
        for attr in block.body.attributes.values():
            if attr.name != "env":
                raise config_error(
                    attr.location, f'unknown attribute "{attr.name}" (expected "env")', app_context, "config"
                )
        if "env" not in block.body.attributes:
            return {}
        return _string_map(evaluator, block.body.attributes["env"], app_context, "config")

    def component(self, app: str, kind: Step, block: RawBlock, evaluator: Evaluator) -> Component:
        context = (f'app "{app}"', kind)
        _no_blocks(block.body, *context)
        attributes = block.body.attributes
        if "use" not in attributes:
            raise config_error(block.location, 'missing required attribute "use"', *context)
        use_attr = attributes["use"]
        use = _evaluate(evaluator, use_attr, *context)
        if not isinstance(use, str) or not use:
            raise config_error(
                use_attr.location,
                f"expected a plugin name, got {type_name(use)}",
                *context,
                'attribute "use"',
            )
        settings: dict[str, Setting] = {}
        for attr in attributes.values():
            if attr.name == "use":
                continue
            value = _evaluate(evaluator, attr, *context)
            settings[attr.name] = Setting(attr.name, value, attr.location, evaluator.last_read_sensitive)
        return Component(app, kind, use, settings, block.location, use_attr.location)


def _evaluate(evaluator: Evaluator, attr: RawAttribute, *context: str) -> Value:
    try:
        return evaluator.evaluate(attr.raw)
    except EvalError as exc:
        raise config_error(attr.location, str(exc), *context, f'attribute "{attr.name}"') from None


def _string_map(evaluator: Evaluator, attr: RawAttribute, *context: str) -> dict[str, str]:
    """A map whose values are strings (numbers and bools are converted, as HCL does)."""
    value = _evaluate(evaluator, attr, *context)
    where = (*context, f'attribute "{attr.name}"')
    if not isinstance(value, dict):
        raise config_error(attr.location, f"expected map, got {type_name(value)}", *where)
    result: dict[str, str] = {}
    for key, item in value.items():
        try:
            result[key] = to_text(item)
        except EvalError:
            shown = "a key" if evaluator.last_read_sensitive else f'key "{key}"'
            raise config_error(attr.location, f"{shown}: expected string, got {type_name(item)}", *where) from None
    return result


def _labels(block: RawBlock, count: int, what: str, *context: str) -> None:
    if len(block.labels) == count:
        return
    if count == 0:
        raise config_error(block.location, f'block "{block.type}" takes no label', *context)
    raise config_error(
        block.location,
        f'block "{block.type}" needs exactly one label: {block.type} "{what}" {{ ... }}',
        *context,
    )


def _no_blocks(body: Body, *context: str) -> None:
    if body.blocks:
        inner = body.blocks[0]
        raise config_error(
            inner.location,
            f'unexpected block "{inner.type}" (write an attribute: {inner.type} = {{ ... }})',
            *context,
        )


__all__ = ["DEFAULT_FILENAME", "load_config", "parse_config"]
