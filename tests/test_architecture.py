"""The rooms of the package and what each may import (ARCHITECTURE.md draws the same
table): the store imports nothing from running, fingerprinting or the CLI;
fingerprinting nothing from the store; the engine only the store's public interface;
the migrations nothing of kazeflow at all. Lazy imports inside functions count too."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VOCABULARY = {"assets", "config", "context", "errors", "results"}
ANY, PUBLIC = "any module", "public modules only"

#: room → the rooms it may import from, and whether their private (``_``) modules too.
ALLOWED: dict[str, dict[str, str]] = {
    "vocabulary": {"vocabulary": ANY},
    "store": {"vocabulary": ANY, "store": ANY, "migrations": ANY},
    "executors": {"vocabulary": ANY, "executors": ANY},
    "fingerprint": {"vocabulary": ANY, "fingerprint": ANY},
    "running": {"vocabulary": ANY, "running": ANY, "fingerprint": ANY,
                "executors": PUBLIC, "store": PUBLIC},
    "flow": {"vocabulary": ANY, "running": ANY, "fingerprint": ANY,
             "executors": PUBLIC, "store": PUBLIC},
    "cli": {"vocabulary": ANY, "package": ANY, "flow": ANY, "cli": ANY, "store": PUBLIC,
            "ui": PUBLIC},
    "ui": {"vocabulary": ANY, "flow": ANY, "store": PUBLIC, "ui": ANY},
    "package": {"vocabulary": ANY, "flow": ANY, "store": PUBLIC},
    "main": {"cli": PUBLIC},
    "migrations": {},
}
#: Imports allowed across the table, each for a reason.
EXCEPTIONS = {
    # `kazeflow db` drives the schema tooling itself: revisions, upgrade, the raw URL
    ("kazeflow.cli._db", "kazeflow.store._migrate"),
    ("kazeflow.cli._db", "kazeflow.store._revision"),
    ("kazeflow.cli._db", "kazeflow.store._sqlalchemy"),
    # the page says why an asset is stale with the very tree and diffs of `kazeflow why`
    ("kazeflow.ui._views", "kazeflow.cli._format"),
    ("kazeflow.ui._server", "kazeflow.cli._format"),
    # Jupyter: the _repr_html_ hooks and the run progress, imported only in a notebook
    ("kazeflow.results", "kazeflow.ui._html"),
    ("kazeflow.flow", "kazeflow.ui._html"),
    ("kazeflow.flow", "kazeflow.ui._notebook"),
}


def room(module: str) -> str:
    """``kazeflow.store._objects`` → ``store``; ``kazeflow.results`` → ``vocabulary``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    head = parts[1]
    if head in VOCABULARY:
        return "vocabulary"
    return {"__main__": "main"}.get(head, head)


def is_private(module: str) -> bool:
    return any(part.startswith("_") and part != "__main__" for part in module.split(".")[2:])


def module_of(path: Path) -> str:
    relative = path.relative_to(REPO).with_suffix("")
    parts = list(relative.parts)
    if parts[0] == "migrations":
        parts = ["kazeflow", *parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path) -> list[str]:
    """The kazeflow modules that ``path`` imports (or imports names from), anywhere."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [f"{node.module}.{a.name}" if is_module(f"{node.module}.{a.name}")
                      else node.module for a in node.names]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
    return [name for name in found if name == "kazeflow" or name.startswith("kazeflow.")]


def is_module(dotted: str) -> bool:
    """Whether ``dotted`` names a module or package of kazeflow (else a name in one)."""
    parts = dotted.split(".")
    if parts[:2] == ["kazeflow", "migrations"]:
        parts = parts[1:]
    else:
        parts[0] = "kazeflow"
    base = REPO.joinpath(*parts)
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def violations(path: Path, module: str) -> list[str]:
    here = room(module)
    wrong = []
    for target in imported(path):
        there = room(target)
        allowed = ALLOWED[here].get(there)
        if (module, target) in EXCEPTIONS:
            continue
        if allowed is None or (allowed == PUBLIC and is_private(target)):
            wrong.append(f"{module} ({here}) imports {target} ({there})")
    return wrong


SOURCES = sorted([*(REPO / "kazeflow").rglob("*.py"), *(REPO / "migrations").rglob("*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_each_module_imports_only_what_its_room_may(path):
    module = module_of(path)
    assert room(module) in ALLOWED, f"{module} is in no room of the table"
    assert violations(path, module) == []


def test_the_check_sees_forbidden_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from kazeflow.store import _objects\nimport kazeflow.store._locks\n"
                     "def later():\n    from kazeflow.cli import main\n"
                     "from kazeflow import flow, results\n")
    assert violations(probe, "kazeflow.running._probe") == [
        "kazeflow.running._probe (running) imports kazeflow.store._objects (store)",
        "kazeflow.running._probe (running) imports kazeflow.store._locks (store)",
        "kazeflow.running._probe (running) imports kazeflow.flow (flow)",
        "kazeflow.running._probe (running) imports kazeflow.cli (cli)",
    ]
    assert violations(probe, "kazeflow.fingerprint._probe")[0].endswith("(store)")


def test_no_module_is_longer_than_400_lines():
    long = {str(p.relative_to(REPO)): n for p in SOURCES
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_the_architecture_page_names_every_room():
    page = (REPO / "ARCHITECTURE.md").read_text()
    rooms = {path.parent.name for path in (REPO / "kazeflow").glob("*/__init__.py")}
    assert rooms == {"cli", "executors", "fingerprint", "running", "store", "ui"}
    for name in rooms:
        assert f"`{name}/`" in page, name
