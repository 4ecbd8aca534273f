"""Imports inside hashed functions: statements, import calls and ``getattr`` with
literal names are followed like module-level imports; dynamic names are warned about.

Every scenario writes real modules (and packages), runs a real ``Flow``, edits a file
and runs again: in this process, as a new process would (no memoised analyses), and in
real new processes, where the result is compared with a run into a fresh store.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from string import Template
from types import ModuleType

import pytest
from test_codehash import Project

from kazeflow import Flow, Store
from kazeflow.fingerprint._code import clear_memory_caches


class Packages(Project):
    """A project whose modules may live in packages: ``"pkg/tasks"`` is module
    ``tasks`` of package ``pkg`` (its ``__init__`` written empty)."""

    def _path(self, stem: str) -> Path:
        if "/" not in stem:
            return self.root / f"{self.names[stem]}.py"
        package, _, module = stem.partition("/")
        folder = self.root / self.names[package]
        folder.mkdir(exist_ok=True)
        (folder / "__init__.py").touch()
        return folder / f"{module}.py"

    def write(self, stem: str, source: str) -> Path:
        source = textwrap.dedent(source)
        path = self._path(stem)
        path.write_text(Template(source).substitute(self.names))
        self._mtime += 10
        os.utime(path, (self._mtime, self._mtime))
        self.sources[stem] = source
        return path

    def module_name(self, stem: str) -> str:
        package, _, module = stem.rpartition("/")
        return f"{self.names[package]}.{module}" if package else self.names[stem]

    def load(self, stem: str = "assets") -> ModuleType:
        self.forget()
        importlib.invalidate_caches()
        if self.new_processes:
            clear_memory_caches()
        return importlib.import_module(self.module_name(stem))


@pytest.fixture(params=["one process", "new processes"])
def project(request: pytest.FixtureRequest, tmp_path: Path, store: Store,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Packages]:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = Packages(tmp_path, store, request.param == "new processes")
    yield result
    result.forget()


HELPERS = """\
def weight(x):
    return x * 2


def unused(x):
    return x
"""

OTHER = """\
@asset
def other():
    return 1
"""


def _assets(body: str, top: str = "", decorator: str = "@asset") -> str:
    """An assets module: ``total`` runs ``body`` (it returns 6 while ``weight`` doubles);
    ``other`` reaches no helper."""
    return (f"import importlib\n\nfrom kazeflow import asset\n{top}\n\n{decorator}\n"
            f"def total():\n{textwrap.indent(textwrap.dedent(body), '    ')}\n\n{OTHER}")


# (id, modules other than helpers, the assets module's stem, its source); the helper
# `weight` is reached through the construct named by the id.
CONSTRUCTS = [
    ("import", {}, "assets", _assets("import $helpers\nreturn $helpers.weight(3)")),
    ("import as", {}, "assets", _assets("import $helpers as h\nreturn h.weight(3)")),
    ("from-import", {}, "assets", _assets("from $helpers import weight\nreturn weight(3)")),
    ("from-import as, also imported at top level", {}, "assets",
     _assets("from $helpers import weight as w\nreturn w(3)", top="import $helpers")),
    ("dotted import of a package's module", {}, "assets",
     _assets("import $pkg.helpers\nreturn $pkg.helpers.weight(3)")),
    ("from package import module", {}, "assets",
     _assets("from $pkg import helpers\nreturn helpers.weight(3)")),
    ("relative from . import module", {}, "pkg/tasks",
     _assets("from . import helpers\nreturn helpers.weight(3)")),
    ("relative from-import of a name", {}, "pkg/tasks",
     _assets("from .helpers import weight\nreturn weight(3)")),
    ("import in a helper the asset calls", {"util": """\
        def compute(x):
            import $helpers
            return $helpers.weight(x)
        """}, "assets", _assets("return compute(3)", top="from $util import compute")),
    ("import in a method of a class the asset uses", {"util": """\
        class Scaler:
            def apply(self, x):
                from $helpers import weight
                return weight(x)
        """}, "assets", _assets("return Scaler().apply(3)", top="from $util import Scaler")),
    ("import_module with a literal, bound to a name", {}, "assets",
     _assets('mod = importlib.import_module("$helpers")\nreturn mod.weight(3)')),
    ("import_module with a literal, used in place", {}, "assets",
     _assets('return importlib.import_module("$helpers").weight(3)')),
    ("import_module imported by name", {}, "assets",
     _assets('from importlib import import_module\n'
             'return import_module("$pkg.helpers").weight(3)')),
    ("relative import_module with __package__", {}, "pkg/tasks",
     _assets('return importlib.import_module(".helpers", __package__).weight(3)')),
    ("__import__ with a literal", {}, "assets",
     _assets('return __import__("$helpers").weight(3)')),
    ("getattr with a literal on a module imported at top level", {}, "assets",
     _assets('return getattr($helpers, "weight")(3)', top="import $helpers")),
    ("getattr with a literal on an import_module call", {}, "assets",
     _assets('return getattr(importlib.import_module("$helpers"), "weight")(3)')),
]


def _write(project: Packages, modules: dict[str, str], stem: str, source: str) -> str:
    """Write the scenario; the stem of the helpers module it reaches."""
    helpers = "pkg/helpers" if ("$pkg" in source or stem.startswith("pkg/")) else "helpers"
    project.write(helpers, HELPERS)
    for name, text in modules.items():
        project.write(name, text)
    project.write(stem, source)
    return helpers


def _fresh_values(project: Packages, stem: str, tmp_path: Path) -> dict[str, object]:
    project.load(stem)
    with Store(tmp_path / "fresh") as fresh:
        result = Flow(store=fresh).run()
        return {name: result[name] for name in result}


@pytest.mark.parametrize(("modules", "stem", "source"), [c[1:] for c in CONSTRUCTS],
                         ids=[c[0] for c in CONSTRUCTS])
def test_editing_a_helper_imported_in_a_body_reruns_exactly_the_asset_that_reaches_it(
        project: Packages, tmp_path: Path, modules: dict[str, str], stem: str,
        source: str) -> None:
    helpers = _write(project, modules, stem, source)
    first = project.run(stem)
    assert set(first.materialized) == {"total", "other"} and first["total"] == 6
    assert project.run(stem).materialized == ()

    project.edit(helpers, "return x\n", "return x + 1\n")  # a function nothing reaches
    assert project.run(stem).materialized == ()

    project.edit(helpers, "x * 2", "x * 3")
    result = project.run(stem)
    assert result.materialized == ("total",) and result.reused == ("other",)
    assert result["total"] == 9
    assert dict(result) == _fresh_values(project, stem, tmp_path)
    assert project.run(stem).materialized == ()


def test_a_library_module_imported_in_a_body_is_neither_hashed_nor_imported(
        project: Packages) -> None:
    if "tabnanny" in sys.modules:
        pytest.skip("tabnanny is loaded already")
    project.write("assets", _assets(
        'import json, decimal as d, tabnanny\nfrom collections import Counter\n'
        'import sqlalchemy.sql\n'
        'return len(json.dumps([d.Decimal(1).is_finite(), Counter(), tabnanny.check, '
        'getattr(json, "dumps"), importlib.import_module("textwrap").dedent("")]))'))
    found = project.fingerprint("assets", "total")
    assert set(found.components) == {"total"}
    assert "tabnanny" not in sys.modules


def test_a_module_a_body_imports_that_cannot_be_found_is_skipped_silently(
        project: Packages, caplog: pytest.LogCaptureFixture) -> None:
    project.write("helpers", HELPERS)
    project.write("assets", _assets(
        "try:\n    import kazeflow_no_such_module\n"
        "    from $helpers import no_such_submodule\n"
        "    import $helpers.no_such_submodule\nexcept ImportError:\n    return 6\n"))
    with caplog.at_level("WARNING", logger="kazeflow"):
        assert set(project.run().materialized) == {"total", "other"}
        assert project.run().materialized == ()
    assert _warnings(caplog) == []


def test_a_user_module_that_fails_to_import_is_named_in_a_warning(
        project: Packages, caplog: pytest.LogCaptureFixture) -> None:
    project.write("broken", "raise RuntimeError('needs a GPU')\n")
    project.write("assets", _assets(
        "try:\n    import $broken\nexcept RuntimeError:\n    return 6\n"))
    with caplog.at_level("WARNING", logger="kazeflow"):
        project.fingerprint("assets", "total")
    assert f"{project.names['broken']} is imported inside a hashed function" in caplog.text
    assert "RuntimeError: needs a GPU" in caplog.text and "code_version" in caplog.text


# ------------------------------------------------------------------ dynamic names

DYNAMIC = """\
import importlib
import os

from kazeflow import asset

import $helpers

NAME = "$helpers"


def loader(name):
    return importlib.import_module(name)


@asset(name="renamed")
def pick():
    mod = importlib.import_module(NAME)
    attr = "weight"
    return getattr($helpers, attr)(3) + mod.weight(0)


@asset
def first():
    return loader(NAME).weight(1)


@asset
def second():
    return loader(NAME).weight(2)


@asset
def plain():
    attr = "sep"
    return [getattr(os, attr), getattr(plain, "name"), getattr(str, attr, None)]
"""


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_a_dynamic_import_is_warned_about_once_per_asset_with_where_and_the_fix(
        project: Packages, caplog: pytest.LogCaptureFixture) -> None:
    path = project.write("helpers", HELPERS)
    path = project.write("assets", DYNAMIC)
    lines = path.read_text().splitlines()

    def line_of(text: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if text in line)

    for attempt in range(2):  # analysed, then (new processes) read from the source cache
        caplog.clear()
        with caplog.at_level("WARNING", logger="kazeflow"):
            assert set(project.run().materialized) == (set() if attempt else
                                                       {"renamed", "first", "second", "plain"})
        found = _warnings(caplog)
        if attempt and not project.new_processes:
            assert found == []  # said once in a process
            continue
        assert len(found) == 3, found
        by_asset = {m.split("'")[1]: m for m in found}
        assert set(by_asset) == {"renamed", "first", "second"}
        pick = by_asset["renamed"]
        assert f"importlib.import_module(NAME) at {path}:{line_of('import_module(NAME)')}" \
            in pick
        assert f"getattr({project.names['helpers']}, attr) at {path}:" \
               f"{line_of('getattr(' + project.names['helpers'])}" in pick
        assert "import the module at module level" in pick and "code_version=" in pick
        for name in ("first", "second"):
            assert f"importlib.import_module(name) at {path}:{line_of('import_module(name)')}" \
                in by_asset[name]


# ------------------------------------------------------------------ in real new processes

RUNNER = """\
import importlib, json, logging, sys
from kazeflow import Flow, Store
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
store, module, action = sys.argv[1:4]
importlib.import_module(module)
with Store(store) as s:
    flow = Flow(store=s)
    if action == "status":
        states = {name: st.state for name, st in flow.status().items()}
        print(json.dumps({"states": states, "loaded": sorted(sys.modules)}))
    else:
        result = flow.run()
        print(json.dumps({"materialized": sorted(result.materialized),
                          "values": {name: result[name] for name in result}}))
"""

#: One project holding a scenario per construct, each with its own helper module:
#: (helper module, how the asset's body reaches it).
PROCESS_SCENARIOS = {
    "by_import": ("h_import", "import h_import\nreturn h_import.weight(3)"),
    "by_from": ("h_from", "from h_from import weight\nreturn weight(3)"),
    "by_relative": ("pkg.h_rel", "from .pkg import h_rel\nreturn h_rel.weight(3)"),
    "by_helper": ("h_helper", "return util.compute(3)"),
    "by_import_module": ("h_call", 'return importlib.import_module("h_call").weight(3)'),
    "by_getattr": ("h_getattr", 'return getattr(h_getattr, "weight")(3)'),
    "by_dunder": ("h_dunder", 'return __import__("h_dunder").weight(3)'),
}


def _process_project(root: Path) -> None:
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    for helper, _ in PROCESS_SCENARIOS.values():
        (root / (helper.replace(".", "/") + ".py")).write_text(HELPERS)
    (root / "util.py").write_text("def compute(x):\n    import h_helper\n"
                                  "    return h_helper.weight(x)\n")
    assets = ["import importlib\n\nfrom kazeflow import asset\n\nimport h_getattr\n"
              "import util\n"]
    for name, (_, body) in PROCESS_SCENARIOS.items():
        assets.append(f"\n\n@asset\ndef {name}():\n{textwrap.indent(body, '    ')}\n")
    assets.append("\n\n@asset\ndef lib_only():\n    import tabnanny\n    return 1\n")
    (root / "flows.py").write_text("".join(assets))  # flows: a module, pkg its sibling
    (root / "__init__.py").write_text("")


def _in_new_process(root: Path, store: Path, action: str = "run") -> dict[str, object]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join([str(root.parent), str(root)])}
    done = subprocess.run([sys.executable, "-c", RUNNER, str(store), "proj.flows", action],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_in_new_processes_an_edited_body_import_reruns_its_readers_as_a_fresh_store_would(
        tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    _process_project(root)
    store = tmp_path / "store"
    everything = {*PROCESS_SCENARIOS, "lib_only"}
    assert set(_in_new_process(root, store)["materialized"]) == everything  # type: ignore[arg-type]
    status = _in_new_process(root, store, "status")
    assert set(status["states"].values()) == {"fresh"}  # type: ignore[attr-defined]
    assert "tabnanny" not in status["loaded"]  # library code is never imported to hash it

    edited = {"by_import", "by_relative", "by_helper", "by_getattr"}
    for name, (helper, _) in PROCESS_SCENARIOS.items():
        path = root / (helper.replace(".", "/") + ".py")
        old, new = ("x * 2", "x * 3") if name in edited else ("return x\n", "return x + 1\n")
        path.write_text(path.read_text().replace(old, new))
    after = _in_new_process(root, store)

    assert set(after["materialized"]) == edited  # type: ignore[arg-type]
    assert after["values"] == _in_new_process(root, tmp_path / "fresh")["values"]
    assert _in_new_process(root, store)["materialized"] == []


def test_scan_reads_import_statements_and_calls_with_literal_or_dynamic_names() -> None:
    import ast

    from kazeflow.fingerprint._imports import DynamicImport, ModuleImport
    from kazeflow.fingerprint._syntax import scan, walk

    found = scan(walk(ast.parse(textwrap.dedent("""\
        def f(name):
            import a.b
            import c.d as e
            m = importlib.import_module("g.h")
            importlib.import_module(".k", __package__).x
            importlib.import_module("..s", "p.q.r")
            __import__("p.q", fromlist=["r"])
            getattr(getattr(a, "b"), "c")
            importlib.import_module(name)
            getattr(e, name)
            getattr(self, name)
            getattr(f(), name)
        """))))

    assert set(found.modules) == {
        ModuleImport("a", "a.b", 0, True), ModuleImport("e", "c.d", 0, False),
        ModuleImport("m", "g.h", 0, False), ModuleImport("<import_module g.h>", "g.h", 0, False),
        ModuleImport("<import_module .k>", "k", 1, False),
        ModuleImport("<import_module p.q.s>", "p.q.s", 0, False),
        ModuleImport("<__import__ p.q>", "p.q", 0, False)}
    assert ["<import_module .k>", "x"] in found.chains and ["a", "b", "c"] in found.chains
    assert found.dynamic == [
        DynamicImport(9, "importlib.import_module(name)", ()),
        DynamicImport(10, "getattr(e, name)", ("e",)),
        DynamicImport(11, "getattr(self, name)", ("self",))]
