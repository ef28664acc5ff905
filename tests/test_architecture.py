"""The fence: every module under src/cloudstation imports only what docs/ARCHITECTURE.md's Rooms table allows.

The table is the rule; this file only reads it. Each row names a top-level module (`errors.py`), a room
(`config/`: the package and everything in it) or a module inside a room (`events/outbox.py`); a module
follows its most specific row, and a module no row covers fails until a row is added. "may import" lists
names: a name is a sibling module or package of the row first (`contract` in an `events/` row is
`events/contract.py`), else a top-level module or room (`natsconn`, `config`). "nothing" means nothing of
ours; "everything above" means every row above this one.

Every kind of import counts: module level or inside a function, absolute or relative (`from . import x`,
`from .x import y`), and a module loaded by name through importlib (`"cloudstation.cli.events_cmd:events"`
in cli/main.py's lazy command table). Importing one's own room, or a package that contains the importer
(Python runs it first anyway), is always allowed.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src" / "cloudstation"
DOC = ROOT / "docs" / "ARCHITECTURE.md"
PACKAGE = "cloudstation"

# A string naming one of our modules, optionally with ":attribute" (the lazy command table's form).
_MODULE_STRING = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?::[A-Za-z_]\w*)?$")


@dataclass(frozen=True)
class Unit:
    """What a row or a name stands for: one module (`exact`) or a package and everything under it."""

    dotted: str
    exact: bool

    def holds(self, module: str) -> bool:
        return module == self.dotted or (not self.exact and module.startswith(self.dotted + "."))


@dataclass(frozen=True)
class Row:
    key: str  # as written: "errors.py", "config/", "events/outbox.py"
    unit: Unit
    allowed: tuple[Unit, ...]


@dataclass(frozen=True)
class Import:
    line: int
    target: str  # dotted module name


class House:
    """A source tree (`root` is the package directory) and the rows that fence it."""

    def __init__(self, root: Path, table: str, package: str = PACKAGE) -> None:
        self.root = root
        self.package = package
        self.problems: list[str] = []
        self.rows = self._parse(table)

    # --- the table ---------------------------------------------------------------------------------------

    def _parse(self, text: str) -> list[Row]:
        lines = _rooms_table(text)
        rows: list[Row] = []
        for number, line in lines:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            if len(cells) != 3:
                self.problems.append(f"ARCHITECTURE.md:{number}: a Rooms row has 3 cells: room | owns | may import")
                continue
            key, may = cells[0].strip("`"), cells[2]
            if any(r.key == key for r in rows):
                self.problems.append(f"ARCHITECTURE.md:{number}: a second row for {key!r}")
                continue
            unit = self._row_unit(key, number)
            if unit is None:
                continue
            if may.lower() == "nothing":
                allowed: tuple[Unit, ...] = ()
            elif may.lower() == "everything above":
                allowed = tuple(r.unit for r in rows)
            else:
                allowed = tuple(
                    u
                    for name in may.split(",")
                    if (u := self._name_unit(name.strip().strip("`"), key, number)) is not None
                )
            rows.append(Row(key, unit, allowed))
        if not rows:
            self.problems.append("ARCHITECTURE.md: no Rooms table found (a '## Rooms' heading, then a table)")
        return rows

    def _row_unit(self, key: str, number: int) -> Unit | None:
        path = self.root / key
        if key.endswith("/") and path.is_dir():
            return Unit(self._dotted(path / "__init__.py"), exact=False)
        if key.endswith(".py") and path.is_file():
            return Unit(self._dotted(path), exact=True)
        self.problems.append(f"ARCHITECTURE.md:{number}: row {key!r} names no module or room under src/{self.package}")
        return None

    def _name_unit(self, name: str, key: str, number: int) -> Unit | None:
        name = name.removesuffix("/").removesuffix(".py")
        home = (self.root / key).parent  # Path drops a trailing "/": a room's home is the top level
        for base in dict.fromkeys([home, self.root]):  # a sibling first, else a top-level module or room
            if (base / f"{name}.py").is_file():
                return Unit(self._dotted(base / f"{name}.py"), exact=True)
            if (base / name).is_dir():
                return Unit(self._dotted(base / name / "__init__.py"), exact=False)
        self.problems.append(f"ARCHITECTURE.md:{number}: row {key!r} may import {name!r}, which names nothing")
        return None

    # --- the tree ------------------------------------------------------------------------------------------

    def modules(self) -> list[Path]:
        return sorted(self.root.rglob("*.py"))

    def _dotted(self, path: Path) -> str:
        parts = [self.package, *path.relative_to(self.root).with_suffix("").parts]
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    def _is_module(self, dotted: str) -> bool:
        parts = dotted.split(".")
        if parts[0] != self.package:
            return False
        base = self.root.joinpath(*parts[1:])
        return base.with_suffix(".py").is_file() or base.is_dir()

    def row_of(self, path: Path) -> Row | None:
        module = self._dotted(path)
        exact = [r for r in self.rows if r.unit.exact and r.unit.dotted == module]
        rooms = [r for r in self.rows if not r.unit.exact and r.unit.holds(module)]
        if exact:
            return exact[0]
        return max(rooms, key=lambda r: len(r.unit.dotted), default=None)

    def imports(self, path: Path) -> list[Import]:
        """Every import of one of our modules in `path`, resolved to the module it loads."""
        tree = ast.parse(path.read_text(), filename=str(path))
        module = self._dotted(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found: list[Import] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [Import(node.lineno, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.append(Import(node.lineno, sub if self._is_module(sub) else base))
        found += self._loaded_by_name(tree)
        return [i for i in found if i.target == self.package or i.target.startswith(self.package + ".")]

    def _loaded_by_name(self, tree: ast.Module) -> list[Import]:
        """Modules loaded through importlib: a literal argument, or every module-naming string in a module
        that passes a computed name (a lazy table of "module:attribute" strings)."""
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _loader_name(n.func)]
        if not calls:
            return []
        computed = any(not (c.args and isinstance(c.args[0], ast.Constant)) for c in calls)
        sources = ast.walk(tree) if computed else (c.args[0] for c in calls)
        found = []
        for node in sources:
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                match = _MODULE_STRING.match(node.value)
                if match:
                    found.append(Import(node.lineno, match["module"]))
        return found

    # --- the rule -------------------------------------------------------------------------------------------

    def violations(self, path: Path) -> list[str]:
        where = path.relative_to(self.root.parent.parent) if self.root.parent.parent in path.parents else path
        row = self.row_of(path)
        if row is None:
            rel = path.relative_to(self.root)
            return [f"{where}: no Rooms row covers {rel}: add a row for it (or its room) to docs/ARCHITECTURE.md"]
        module = self._dotted(path)
        out: list[str] = []
        for imp in dict.fromkeys(self.imports(path)):
            if module == imp.target or module.startswith(imp.target + "."):
                continue  # itself, or a package containing it
            if row.unit.holds(imp.target) or any(u.holds(imp.target) for u in row.allowed):
                continue
            out.append(f"{where}:{imp.line}: imports {imp.target}, which row {row.key!r} does not allow")
        return out


def _loader_name(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module"
    return isinstance(func, ast.Name) and func.id in {"import_module", "__import__"}


def _rooms_table(text: str) -> list[tuple[int, str]]:
    """The rows (line number, text) of the first table under the '## Rooms' heading, header excluded."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "## Rooms"), None)
    if start is None:
        return []
    rows: list[tuple[int, str]] = []
    for i in range(start + 1, len(lines)):
        line = lines[i].strip()
        if line.startswith("#"):
            break
        if line.startswith("|"):
            rows.append((i + 1, line))
        elif rows:
            break
    return [r for r in rows[1:] if not re.fullmatch(r"\|[\s:|-]+\|?", r[1])]


HOUSE = House(SRC, DOC.read_text())
MODULES = HOUSE.modules()


def test_the_rooms_table_reads() -> None:
    assert not HOUSE.problems, "; ".join(HOUSE.problems)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_rooms_table(path: Path) -> None:
    bad = HOUSE.violations(path)
    assert not bad, "; ".join(bad)


def test_every_module_says_what_it_owns() -> None:
    missing = [str(p.relative_to(SRC)) for p in MODULES if ast.get_docstring(ast.parse(p.read_text())) is None]
    assert missing == []


MAX_MODULE_LINES = 400  # a module a newcomer reads in one sitting; past it, split by what it owns


def test_no_module_is_over_400_lines() -> None:
    long = [
        f"{p.relative_to(SRC)}: {n} lines" for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert long == [], f"over {MAX_MODULE_LINES} lines (split it by what it owns): " + "; ".join(long)


# --- the fence itself can fail: a small house on synthetic input ------------------------------------------------

_TABLE = """\
## Rooms

| room | owns | may import |
|---|---|---|
| `__init__.py` | the package | nothing |
| `errors.py` | errors | nothing |
| `events/__init__.py` | the room | nothing |
| `events/contract.py` | the contract | errors |
| `events/outbox.py` | the journal | contract |
| `events/redaction.py` | secrets | nothing |
| `config/` | config | errors |
| `cli/` | commands | everything above |

Prose after the table.
"""


def _house(tmp_path: Path, files: dict[str, str], table: str = _TABLE) -> House:
    root = tmp_path / "src" / PACKAGE
    base = {
        "__init__.py": "",
        "errors.py": "",
        "events/__init__.py": "",
        "events/contract.py": "from cloudstation.errors import X\n",
        "events/outbox.py": "from cloudstation.events.contract import E\n",
        "events/redaction.py": "",
        "config/__init__.py": "",
        "cli/__init__.py": "",
    }
    for rel, text in {**base, **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return House(root, table)


def _bad(house: House, rel: str) -> list[str]:
    return house.violations(house.root / rel)


def test_fence_allows_what_the_rows_say(tmp_path: Path) -> None:
    house = _house(tmp_path, {"config/a.py": "from . import b\nfrom cloudstation.errors import X\n", "config/b.py": ""})
    assert house.problems == []
    bad = {str(p.relative_to(house.root)): house.violations(p) for p in house.modules()}
    assert {k: v for k, v in bad.items() if v} == {}


def test_fence_catches_a_forbidden_relative_import(tmp_path: Path) -> None:
    house = _house(tmp_path / "a", {"events/outbox.py": "from .redaction import Redactor\n"})
    assert _bad(house, "events/outbox.py") == [
        "src/cloudstation/events/outbox.py:1: imports cloudstation.events.redaction, "
        "which row 'events/outbox.py' does not allow"
    ]
    house = _house(tmp_path / "b", {"events/outbox.py": "def f():\n    from .. import config\n"})
    assert _bad(house, "events/outbox.py") == [
        "src/cloudstation/events/outbox.py:2: imports cloudstation.config, which row 'events/outbox.py' does not allow"
    ]


def test_fence_catches_an_importlib_string(tmp_path: Path) -> None:
    lazy = 'import importlib\nCOMMANDS = {"x": "cloudstation.cli.x:x",\n "y": "cloudstation.later:y"}\n'
    lazy += "def load(name):\n    return importlib.import_module(COMMANDS[name].split(':')[0])\n"
    table = _TABLE.replace("| `cli/` | commands | everything above |", "| `cli/` | commands | errors |")
    table = table.replace("| `config/` |", "| `later.py` | later | nothing |\n| `config/` |")
    house = _house(tmp_path / "a", {"cli/main.py": lazy, "cli/x.py": "", "later.py": ""}, table)
    assert house.problems == []
    assert _bad(house, "cli/main.py") == [
        "src/cloudstation/cli/main.py:3: imports cloudstation.later, which row 'cli/' does not allow"
    ]
    literal = "import importlib\nimportlib.import_module('cloudstation.events.outbox')\n"
    house = _house(tmp_path / "b", {"config/a.py": literal})
    assert _bad(house, "config/a.py") == [
        "src/cloudstation/config/a.py:2: imports cloudstation.events.outbox, which row 'config/' does not allow"
    ]


def test_fence_resolves_a_sibling_before_a_top_level_room(tmp_path: Path) -> None:
    table = _TABLE.replace("| `config/` |", "| `redaction.py` | secrets | nothing |\n| `config/` |")
    table = table.replace("| the journal | contract |", "| the journal | contract, redaction |")
    sibling = "from cloudstation.events import redaction\n"
    top = "import cloudstation.redaction\n"
    house = _house(tmp_path / "a", {"redaction.py": "", "events/outbox.py": sibling + top}, table)
    assert house.problems == []
    assert _bad(house, "events/outbox.py") == [
        "src/cloudstation/events/outbox.py:2: imports cloudstation.redaction, "
        "which row 'events/outbox.py' does not allow"
    ]
    # without a sibling of that name, "redaction" is the top-level module
    table = table.replace("| `events/redaction.py` | secrets | nothing |\n", "")
    house = _house(tmp_path / "b", {"redaction.py": "", "events/outbox.py": top}, table)
    (house.root / "events" / "redaction.py").unlink()
    house = House(house.root, table)
    assert house.problems == []
    assert _bad(house, "events/outbox.py") == []


def test_fence_wants_a_row_for_every_module(tmp_path: Path) -> None:
    house = _house(tmp_path, {"events/extra.py": "", "newroom/__init__.py": ""})
    assert _bad(house, "events/extra.py") == [
        "src/cloudstation/events/extra.py: no Rooms row covers events/extra.py: "
        "add a row for it (or its room) to docs/ARCHITECTURE.md"
    ]
    assert _bad(house, "newroom/__init__.py")[0].startswith("src/cloudstation/newroom/__init__.py: no Rooms row")
    assert _bad(house, "config/__init__.py") == []


def test_fence_reads_the_may_import_column(tmp_path: Path) -> None:
    cli = "from cloudstation.events.outbox import O\nfrom cloudstation import errors\n"
    house = _house(tmp_path / "a", {"cli/main.py": cli})
    assert _bad(house, "cli/main.py") == []  # everything above
    house = _house(tmp_path / "b", {"events/redaction.py": "from cloudstation.errors import X\n"})
    assert _bad(house, "events/redaction.py") == [
        "src/cloudstation/events/redaction.py:1: imports cloudstation.errors, "
        "which row 'events/redaction.py' does not allow"
    ]
    stale = _TABLE.replace("| the journal | contract |", "| the journal | contract, gone |")
    stale = stale.replace("`errors.py`", "`errs.py`")
    stale = stale.replace("| `cli/` |", "| `config/` | again | nothing |\n| `cli/` |")
    house = _house(tmp_path / "c", {}, stale)
    assert len(house.problems) == 3
    assert all(p.startswith("ARCHITECTURE.md:") for p in house.problems)
