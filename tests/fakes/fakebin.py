"""Recording fake executables: stand-ins for docker, nomad, nomad-pack, railpack and nixpacks in tests.

``make_fake(bin_dir, name, record_file, script=[Rule(...), ...])`` writes ``bin_dir/name``: a small
Python program (``#!<this interpreter>``, so it needs nothing on PATH) that, on each invocation,

1. appends one JSON line to ``record_file``: ``{"tool", "argv", "cwd", "env", "stdin"}``. ``argv`` is the
   full argument vector with ``argv[0]`` = ``name``; ``env`` is the child's whole environment minus
   :data:`ENV_NOISE` (shell bookkeeping such as ``PWD``, ``SHLVL``, ``_``); ``stdin`` is what was piped in
   (``""`` for /dev/null; not read when stdin is a terminal);
2. answers with the first :class:`Rule` whose ``args`` prefix matches ``argv[1:]``: its ``stdout``,
   ``stderr`` (``{args}`` in them is replaced by the space-joined arguments) and ``exit_code``;
   ``echo_stdin`` also prints stdin to stdout. The test's rules come first, then :data:`DEFAULT_RULES`
   for that tool (output shaped like the real tool's documented output, e.g. ``docker push`` ends with
   ``latest: digest: sha256:<64 hex> size: 1234``, ``nomad job status`` prints ``Status        = running``),
   then a catch-all: exit 0, no output.

The rules live in ``bin_dir/.name.rules.json``, so :meth:`FakeBin.add` may replace them between calls.

:class:`FakeBin` bundles a bin dir and one record file; the ``fake_bin`` fixture gives one per test.
Give its :attr:`FakeBin.env` to the code under test (e.g. ``PluginContext(env=fake_bin.env)``): ``PATH``
is the fake bin dir **only**, so a tool without a fake is "not installed" even on a machine that has the
real one. :meth:`FakeBin.calls` reads the invocations back as :class:`Invocation` s;
:meth:`Invocation.env_changes` shows only what the caller added or changed relative to this process's
environment.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

#: Environment variables left out of the record: shell bookkeeping, not something a caller chose.
ENV_NOISE = frozenset({"_", "PWD", "OLDPWD", "SHLVL", "PS1", "PS2", "LS_COLORS", "TERM", "COLUMNS", "LINES"})

DIGEST = "sha256:" + "ab12" * 16
"""The digest the default ``docker push`` rule prints."""

NOMAD_STATUS = """ID            = {job}
Name          = {job}
Submit Date   = 2026-01-01T00:00:00Z
Type          = service
Priority      = 50
Datacenters   = *
Namespace     = default
Node Pool     = default
Status        = {status}
Periodic      = false
Parameterized = false

Summary
Task Group  Queued  Starting  Running  Failed  Complete  Lost  Unknown
web         0       0         1        0       0         0     0

Latest Deployment
ID          = 0f3c1a2b
Status      = successful
Description = Deployment completed successfully
"""


@dataclass(frozen=True)
class Rule:
    """How the fake answers when its arguments start with ``args``."""

    args: tuple[str, ...] = ()
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    echo_stdin: bool = False


DEFAULT_RULES: dict[str, list[Rule]] = {
    "docker": [
        Rule(("login",), stdout="Login Succeeded\n"),
        Rule(("build",), stderr='#0 building with "default" instance using docker driver\n#9 DONE 0.1s\n'),
        Rule(("tag",)),
        Rule(
            ("push",),
            stdout=(
                f"The push refers to repository [example]\n5f70bf18a086: Pushed\nlatest: digest: {DIGEST} size: 1234\n"
            ),
        ),
    ],
    "railpack": [Rule(("build",), stdout="Successfully built image\n")],
    "nixpacks": [Rule(("build",), stdout="Successfully Built!\n")],
    "nomad-pack": [
        Rule(("registry", "add"), stdout="Registry successfully added\n"),
        Rule(("run",), stdout="Pack successfully deployed. Use --name to manage it.\n"),
    ],
    "nomad": [
        Rule(("job", "status"), stdout=NOMAD_STATUS.format(job="web", status="running")),
        Rule(("job", "stop"), stdout='==> Monitoring evaluation "0f3c1a2b"\n'),
    ],
}

_PROGRAM = """\
#!{python}
# Recording fake of {name!r}, written by tests/fakes/fakebin.py.
import json, os, sys
NAME = {name!r}
RECORD = {record!r}
RULES = {rules!r}
NOISE = {noise!r}
args = sys.argv[1:]
stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read().decode("utf-8", "replace")
entry = {{
    "tool": NAME,
    "argv": [NAME, *args],
    "cwd": os.getcwd(),
    "env": {{k: v for k, v in os.environ.items() if k not in NOISE}},
    "stdin": stdin,
}}
with open(RECORD, "a", encoding="utf-8") as record:
    record.write(json.dumps(entry) + "\\n")
with open(RULES, encoding="utf-8") as handle:
    rules = json.load(handle)
for rule in rules:
    if args[: len(rule["args"])] == rule["args"]:
        joined = " ".join(args)
        sys.stdout.write(rule["stdout"].replace("{{args}}", joined))
        if rule["echo_stdin"]:
            sys.stdout.write(stdin)
        sys.stdout.flush()
        sys.stderr.write(rule["stderr"].replace("{{args}}", joined))
        sys.exit(rule["exit_code"])
"""


def make_fake(
    bin_dir: Path, name: str, record_file: Path, script: Sequence[Rule] = (), *, defaults: bool = True
) -> Path:
    """Write the fake executable ``bin_dir/name`` (see the module docstring); returns its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    rules_file = bin_dir / f".{name}.rules.json"
    rules = [*script, *(DEFAULT_RULES.get(name, []) if defaults else [])]
    rules_file.write_text(json.dumps([_rule_json(rule) for rule in rules]), encoding="utf-8")
    program = _PROGRAM.format(
        python=sys.executable,
        name=name,
        record=str(record_file),
        rules=str(rules_file),
        noise=sorted(ENV_NOISE),
    )
    path = bin_dir / name
    path.write_text(program, encoding="utf-8")
    path.chmod(0o755)
    return path


def _rule_json(rule: Rule) -> dict[str, object]:
    data = asdict(rule)
    data["args"] = list(rule.args)
    return data


@dataclass(frozen=True)
class Invocation:
    """One recorded run of a fake."""

    tool: str
    argv: list[str]
    cwd: str
    env: dict[str, str]
    stdin: str

    @property
    def args(self) -> list[str]:
        return self.argv[1:]

    def env_changes(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables whose value differs from ``base`` (default: this test process's environment)."""
        base = os.environ if base is None else base
        return {k: v for k, v in self.env.items() if base.get(k) != v}


def read_calls(record_file: Path) -> list[Invocation]:
    """Every invocation recorded in ``record_file``, in order."""
    if not record_file.exists():
        return []
    lines = record_file.read_text(encoding="utf-8").splitlines()
    return [Invocation(**json.loads(line)) for line in lines if line]


@dataclass
class FakeBin:
    """A directory of fakes sharing one record file."""

    bin_dir: Path
    record_file: Path
    tools: list[str] = field(default_factory=list)

    def add(self, name: str, *rules: Rule, defaults: bool = True) -> Path:
        """Create (or re-script) the fake ``name``: ``rules`` first, then its defaults."""
        if name not in self.tools:
            self.tools.append(name)
        return make_fake(self.bin_dir, name, self.record_file, rules, defaults=defaults)

    @property
    def env(self) -> dict[str, str]:
        """Environment overrides for the code under test: ``PATH`` is the fake bin dir only."""
        return {"PATH": str(self.bin_dir)}

    def calls(self, tool: str | None = None) -> list[Invocation]:
        """The recorded invocations (of ``tool`` only, when given)."""
        return [c for c in read_calls(self.record_file) if tool is None or c.tool == tool]

    def argvs(self) -> list[list[str]]:
        return [c.argv for c in self.calls()]

    def __iter__(self) -> Iterator[Invocation]:
        return iter(self.calls())


@pytest.fixture
def fake_bin(tmp_path: Path) -> FakeBin:
    """An empty fake bin dir (add tools with :meth:`FakeBin.add`) and its record file."""
    return FakeBin(tmp_path / "fakebin", tmp_path / "fake-calls.jsonl")


def image_inspect_json(exposed: Sequence[str] = (), env: Sequence[str] = ()) -> str:
    """What ``docker image inspect <ref>`` prints (a JSON array of one image), trimmed to the fields cs reads.

    ``exposed`` are ``ExposedPorts`` keys (``"8080/tcp"``); none gives ``null`` as docker does.
    """
    config: dict[str, object] = {
        "Hostname": "",
        "User": "",
        "ExposedPorts": {port: {} for port in exposed} or None,
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", *env],
        "Cmd": ["node", "server.js"],
        "WorkingDir": "/app",
    }
    image = {"Id": "sha256:" + "cd34" * 16, "RepoTags": ["app:latest"], "Architecture": "amd64", "Config": config}
    return json.dumps([image], indent=4) + "\n"


# `docker image inspect` answers as the real docker does for an image that exposes nothing (the JSON array
# shape cs parses; a test gives its own ports with `Rule(("image", "inspect"), stdout=image_inspect_json(...))`).
DEFAULT_RULES["docker"].append(Rule(("image", "inspect"), stdout=image_inspect_json()))
