"""Code hashing scenarios: which edits re-run an asset and which re-run nothing.

Every scenario writes real modules into a temporary folder, imports them, runs a real
``Flow`` against a real store, edits a file, imports afresh and runs again.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from string import Template
from types import ModuleType

import pytest

from kazeflow import Flow, RunResult, Store
from kazeflow.fingerprint._code import CodeFingerprint, clear_memory_caches, fingerprint


class _ModuleNames(dict[str, str]):
    """``$helpers`` in a template → the project's unique module name for ``helpers``."""

    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag

    def __missing__(self, stem: str) -> str:
        return f"{stem}_{self.tag}"


class Project:
    """User modules written into a folder, imported afresh and run against one store."""

    def __init__(self, root: Path, store: Store, new_processes: bool = False) -> None:
        self.root = root
        self.store = store
        self.new_processes = new_processes  # each import starts with no memoised analyses
        self.names = _ModuleNames(uuid.uuid4().hex[:8])
        self.sources: dict[str, str] = {}
        self._mtime = 1_700_000_000

    def write(self, stem: str, source: str) -> Path:
        """Write module ``stem``; ``$other`` in ``source`` names the module ``other``."""
        source = textwrap.dedent(source)
        path = self.root / f"{self.names[stem]}.py"
        path.write_text(Template(source).substitute(self.names))
        self._mtime += 10  # a same-size rewrite must still look new to linecache
        os.utime(path, (self._mtime, self._mtime))
        self.sources[stem] = source
        return path

    def edit(self, stem: str, old: str, new: str) -> None:
        """Replace ``old`` (which must occur) by ``new`` in module ``stem``."""
        assert old in self.sources[stem], f"{old!r} is not in {stem}"
        self.write(stem, self.sources[stem].replace(old, new))

    def forget(self) -> None:
        """Drop every module (and package) of the project from ``sys.modules``."""
        for name in [m for m in sys.modules if m.split(".")[0].endswith(self.names.tag)]:
            del sys.modules[name]

    def load(self, stem: str = "assets") -> ModuleType:
        """Forget every module of the project and import ``stem`` afresh."""
        self.forget()
        importlib.invalidate_caches()
        if self.new_processes:
            clear_memory_caches()
        return importlib.import_module(self.names[stem])

    def run(self, stem: str = "assets") -> RunResult:
        """Import ``stem`` afresh and run every asset it registers."""
        self.load(stem)
        return Flow(store=self.store).run()

    def fingerprint(self, stem: str, attribute: str) -> CodeFingerprint:
        """Import ``stem`` afresh and fingerprint its function (or asset) ``attribute``."""
        target = getattr(self.load(stem), attribute)
        return fingerprint(getattr(target, "fn", target))


@pytest.fixture(params=["one process", "new processes"])
def project(request: pytest.FixtureRequest, tmp_path: Path, store: Store,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """An empty project folder on ``sys.path`` that never writes stale bytecode. With
    "new processes", every import starts without memoised analyses, as a new process
    does, so unchanged files are read from the store's persistent cache."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = Project(tmp_path, store, request.param == "new processes")
    yield result
    result.forget()


# ------------------------------------------------------------------ the change catalogue

DEEP = '''\
SCALE = 2


def scale(x):
    return x * SCALE
'''

HELPERS = '''\
from $deep import scale

FACTOR = 3
LIMITS = [1, 2, 3]
SEEN = []


def clean(rows):
    """Drop outliers."""
    return [scale(r) for r in rows if r < 100]


class Normaliser:
    """Scales rows."""

    factor = 1

    def apply(self, rows):
        return [r * self.factor for r in rows]
'''

ASSETS = '''\
from kazeflow import asset

import $helpers as helpers
from $helpers import FACTOR, Normaliser, clean

OFFSET = 1


@asset
def raw():
    return [1, 2, 3]


@asset
def cleaned(raw):
    # outliers are dropped by the helper
    return clean(raw)


@asset
def shifted(raw):
    return [r + OFFSET for r in raw]


@asset
def tripled(raw):
    return [r * FACTOR for r in raw]


@asset
def limited(raw):
    helpers.SEEN.append(len(raw))  # every run mutates a module-level list
    return [r for r in raw if r in helpers.LIMITS]


@asset
def normalised(raw):
    return Normaliser().apply(raw)


def make_power(exponent):
    @asset(name="powered")
    def powered(raw):
        return [r**exponent for r in raw]

    return powered


powered = make_power(2)


@asset(code_version="1")
def pinned(raw):
    return sorted(raw)
'''

ALL_ASSETS = {"raw", "cleaned", "shifted", "tripled", "limited", "normalised", "powered",
              "pinned"}

CATALOGUE = [
    # (id, module, old text, new text, assets that must re-run)
    ("comment", "assets", "# outliers are dropped by the helper",
     "# helpers.clean drops outliers (see its docstring)", ()),
    ("helper docstring", "helpers", '"""Drop outliers."""',
     '"""Drop every row of 100 or more."""', ()),
    ("class docstring", "helpers", '"""Scales rows."""',
     '"""Multiplies every row by a factor."""', ()),
    ("formatting", "assets", "return [r + OFFSET for r in raw]",
     "return [ r+OFFSET\n             for r in raw ]\n\n", ()),
    ("formatting that shifts every line below", "helpers", "from $deep import scale\n",
     "from $deep import (\n    scale,\n)\n\n\n", ()),
    ("same constant, other spelling", "assets", "OFFSET = 1", "OFFSET = (1)  # units", ()),
    ("asset decorator options", "assets", "@asset\ndef cleaned",
     '@asset(description="Rows without outliers.")\ndef cleaned', ()),
    ("asset body", "assets", "r + OFFSET", "r - OFFSET", ("shifted",)),
    ("helper body", "helpers", "r < 100", "r < 50", ("cleaned",)),
    ("transitive helper in another module", "deep", "x * SCALE", "SCALE * x + 0",
     ("cleaned",)),
    ("constant of the asset's module", "assets", "OFFSET = 1", "OFFSET = 2", ("shifted",)),
    ("constant imported with from-import", "helpers", "FACTOR = 3", "FACTOR = 4",
     ("tripled",)),
    ("constant read by a transitive helper", "deep", "SCALE = 2", "SCALE = 5", ("cleaned",)),
    ("statement assigning a mutable global", "helpers", "LIMITS = [1, 2, 3]",
     "LIMITS = [1, 2]", ("limited",)),
    ("class attribute", "helpers", "factor = 1", "factor = 2", ("normalised",)),
    ("class method", "helpers", "r * self.factor", "self.factor * r", ("normalised",)),
    ("closure variable", "assets", "make_power(2)", "make_power(3)", ("powered",)),
    ("body under a pinned code_version", "assets", "sorted(raw)",
     "sorted(raw, reverse=True)", ()),
    ("code_version", "assets", 'code_version="1"', 'code_version="2"', ("pinned",)),
]


def write_catalogue_project(project: Project) -> None:
    project.write("deep", DEEP)
    project.write("helpers", HELPERS)
    project.write("assets", ASSETS)


@pytest.mark.parametrize(("module", "old", "new", "reruns"),
                         [case[1:] for case in CATALOGUE], ids=[case[0] for case in CATALOGUE])
def test_an_edit_reruns_exactly_the_assets_whose_code_it_changes(
        project: Project, module: str, old: str, new: str, reruns: tuple[str, ...]) -> None:
    write_catalogue_project(project)
    assert set(project.run().materialized) == ALL_ASSETS

    project.edit(module, old, new)
    result = project.run()

    assert result.materialized == reruns
    assert set(result.reused) == ALL_ASSETS - set(reruns)


def test_a_run_that_appends_to_a_module_level_list_changes_no_code_hash(
        project: Project) -> None:
    write_catalogue_project(project)
    project.run()
    helpers = sys.modules[project.names["helpers"]]
    assert helpers.SEEN == [3]

    again = Flow(store=project.store).run()  # same process: the list has grown

    assert again.materialized == ()
    assert helpers.SEEN == [3]


def test_editing_the_statement_that_creates_a_mutated_list_reruns_its_readers(
        project: Project) -> None:
    write_catalogue_project(project)
    project.run()
    project.edit("helpers", "SEEN = []", "SEEN = [0]")
    assert project.run().materialized == ("limited",)


def test_a_mutable_global_built_in_any_kind_of_block_is_hashed_by_its_statements(
        project: Project) -> None:
    project.write("assets", """\
        import os

        from kazeflow import asset

        match os.environ.get("KZTEST_UNSET_MODE", "a"):
            case "a":
                TABLE = {"x": 1}
            case _:
                TABLE = {"x": 2}

        try:
            OTHER = {"y": 1}
        except* ValueError:
            OTHER = {}


        @asset
        def reads():
            return TABLE["x"] + OTHER["y"]
        """)
    found = project.fingerprint("assets", "reads")
    assert found.components["TABLE"] == "TABLE = {'x': 1}\nTABLE = {'x': 2}"
    assert found.components["OTHER"] == "OTHER = {'y': 1}\nOTHER = {}"
    project.run()
    project.edit("assets", '"a":\n        TABLE = {"x": 1}', '"a":\n        TABLE = {"x": 5}')
    assert project.run().materialized == ("reads",)


def test_globals_bound_by_for_with_and_case_patterns_are_hashed_by_their_statements(
        project: Project) -> None:
    project.write("assets", """\
        import contextlib

        from kazeflow import asset

        for ROWS in ([1, 2],):
            pass

        with contextlib.nullcontext({"k": 1}) as LOOKUP:
            pass

        match {"table": {"x": 1}}:
            case {"table": TABLE}:
                pass


        @asset
        def reads():
            return ROWS[0] + LOOKUP["k"] + TABLE["x"]
        """)
    found = project.fingerprint("assets", "reads")
    assert found.components["ROWS"].startswith("for ROWS in ([1, 2],):")
    assert found.components["LOOKUP"].startswith("with contextlib.nullcontext")
    assert found.components["TABLE"].startswith("match {'table': {'x': 1}}:")


def test_a_global_no_statement_builds_is_named_in_a_warning(
        project: Project, caplog: pytest.LogCaptureFixture) -> None:
    project.write("assets", """\
        from kazeflow import asset

        globals()["HIDDEN"] = {"x": 1}


        @asset
        def reads():
            return HIDDEN["x"]
        """)
    with caplog.at_level("WARNING", logger="kazeflow"):
        found = project.fingerprint("assets", "reads")
    assert found.components["HIDDEN"] == "<dict object>"
    assert f"{project.names['assets']}.HIDDEN (a dict)" in caplog.text
    assert "code_version" in caplog.text


def test_a_mutable_global_imported_from_another_module_is_followed(
        project: Project) -> None:
    project.write("tables", "RATES = {'eu': 2}\nUNUSED = {'x': 1}\n")
    project.write("assets", """\
        from kazeflow import asset
        from $tables import RATES as PRICES, UNUSED


        @asset
        def priced():
            return PRICES["eu"] * 10
        """)
    assert project.run().materialized == ("priced",)
    assert project.run().materialized == ()
    project.edit("tables", "UNUSED = {'x': 1}", "UNUSED = {'x': 2}")
    assert project.run().materialized == ()  # the import names it, the asset never reads it
    project.edit("tables", "RATES = {'eu': 2}", "RATES = {'eu': 3}")
    result = project.run()
    assert result.materialized == ("priced",) and result["priced"] == 30


def test_status_explains_a_helper_change_with_the_changed_lines(project: Project) -> None:
    write_catalogue_project(project)
    project.run()
    project.edit("helpers", "r < 100", "r < 50")
    project.load()

    status = Flow(store=project.store).status()

    assert status["shifted"].state == "fresh"
    assert status["cleaned"].state == "stale"
    (reason,) = status["cleaned"].reasons
    assert reason.kind == "code_changed"
    assert reason.details["changed"] == [f"{project.names['helpers']}:clean"]
    diff = reason.details["diff"]
    assert "-    return [scale(r) for r in rows if r < 100]" in diff
    assert "+    return [scale(r) for r in rows if r < 50]" in diff


# ------------------------------------------------------------------ what is and is not user code

def test_library_code_is_not_hashed(project: Project) -> None:
    project.write("assets", """\
        import collections
        import json
        import textwrap

        import cloudpickle
        import sqlalchemy

        import kazeflow
        from kazeflow import Config, asset


        @asset
        def uses_libraries():
            counts = collections.Counter(json.loads("[1, 1, 2]"))
            text = textwrap.dedent(str(sqlalchemy.text("select 1")))
            return len(cloudpickle.dumps(counts)), text, Config, kazeflow.Flow
        """)

    assert set(project.fingerprint("assets", "uses_libraries").components) == {
        "uses_libraries"}


MAIN_SCRIPT = """\
import json
import logging

from kazeflow import asset
from kazeflow.fingerprint._code import fingerprint
from $helpers import clean

log = logging.getLogger(__name__)
LIMIT = 3


@asset
def report():
    log.info("building the report")
    return clean([1, 2, 3, 4])[:LIMIT]


if __name__ == "__main__":
    found = fingerprint(report.fn)
    print(json.dumps({"code_hash": found.code_hash, "components": found.components}))
"""


def test_running_a_file_as_main_or_importing_it_gives_the_same_hash(
        project: Project) -> None:
    project.write("helpers", "def clean(rows):\n    return [r for r in rows if r]\n")
    script = project.write("assets", MAIN_SCRIPT)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, str(script)], cwd=project.root, env=env,
                         capture_output=True, text=True, check=True).stdout

    imported = project.fingerprint("assets", "report")

    assert json.loads(out) == {"code_hash": imported.code_hash,
                               "components": dict(imported.components)}
    assert imported.components["log"] == "log = logging.getLogger(__name__)"
    assert "__name__" not in imported.components


# ------------------------------------------------------------------ less common ways to reach code

DECORATED_HELPER = """\
import functools

LIMIT = 10

def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*args)
    return wrapper

@logged
def capped(x):
    return min(x, LIMIT)
"""

CALLS_CAPPED = """\
from kazeflow import asset
from $helpers import capped

@asset
def total():
    return capped(30)
"""

EDGE_CASES = [
    # (id, helpers source, assets source, old text, new text): the edit must re-run `total`
    ("two lambdas", """\
        strip = lambda s: s.strip()
        lower = lambda s: s.lower()
        """, """\
        from kazeflow import asset
        from $helpers import lower, strip

        @asset
        def total():
            return lower(strip("  A "))
        """, "s.strip()", "s.lstrip()"),
    ("two functions from one factory", """\
        def make_scaler(k):
            def scale(x):
                return x * k
            return scale
        """, """\
        from kazeflow import asset
        from $helpers import make_scaler

        double = make_scaler(2)
        triple = make_scaler(3)

        @asset
        def total():
            return double(1) + triple(1)
        """, "make_scaler(3)", "make_scaler(4)"),
    ("helper behind functools.cache", """\
        import functools

        @functools.cache
        def weight(x):
            return x * 2
        """, """\
        from kazeflow import asset
        from $helpers import weight

        @asset
        def total():
            return weight(3)
        """, "x * 2", "x * 3"),
    ("constant read by a helper behind a user decorator", DECORATED_HELPER, CALLS_CAPPED,
     "LIMIT = 10", "LIMIT = 20"),
    ("body of the user decorator", DECORATED_HELPER, CALLS_CAPPED,
     "return fn(*args)", "return fn(*args) * 2"),
    ("helper imported inside the asset", "def weight(x):\n    return x * 2\n", """\
        from kazeflow import asset
        import $helpers  # noqa: F401  (loaded, as in a project whose modules import it)

        @asset
        def total():
            from $helpers import weight
            return weight(3)
        """, "x * 2", "x * 3"),
    ("constant in a helper's default argument", """\
        LIMIT = 10

        def capped(x, limit=LIMIT):
            return min(x, limit)
        """, """\
        from kazeflow import asset
        from $helpers import capped

        @asset
        def total():
            return capped(30)
        """, "LIMIT = 10", "LIMIT = 20"),
    ("class without source (namedtuple)", """\
        from collections import namedtuple

        Point = namedtuple("Point", ["x", "y"])
        """, """\
        from kazeflow import asset
        from $helpers import Point

        @asset
        def total():
            return Point(1, 2)
        """, '["x", "y"]', '["x", "y", "z"], defaults=[0]'),
    ("list mutated at import time", """\
        NAMES = ["a"]
        NAMES.append("b")
        """, """\
        from kazeflow import asset
        from $helpers import NAMES

        @asset
        def total():
            return len(NAMES)
        """, 'NAMES.append("b")', 'NAMES.extend(["b", "c"])'),
    ("list from a star import", """\
        NAMES = ["a", "b"]
        """, """\
        from kazeflow import asset
        from $helpers import *

        @asset
        def total():
            return len(NAMES)
        """, '["a", "b"]', '["a", "b", "c"]'),
    ("mutable closure variable", "", """\
        from kazeflow import asset

        def make_total():
            names = ["a", "b"]

            @asset(name="total")
            def total():
                return len(names)

            return total

        total = make_total()
        """, '["a", "b"]', '["a", "b", "c"]'),
]


@pytest.mark.parametrize(("helpers", "assets", "old", "new"),
                         [case[1:] for case in EDGE_CASES], ids=[case[0] for case in EDGE_CASES])
def test_an_edit_reached_in_a_less_common_way_reruns_the_asset(
        project: Project, helpers: str, assets: str, old: str, new: str) -> None:
    project.write("helpers", helpers)
    project.write("assets", assets)
    assert project.run().materialized == ("total",)

    module = "helpers" if old in project.sources["helpers"] else "assets"
    project.edit(module, old, new)

    assert project.run().materialized == ("total",)
    assert project.run().materialized == ()


def test_a_helper_imported_relatively_inside_a_package_is_hashed(project: Project) -> None:
    package = project.root / project.names["pkg"]
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("NAMES = ['a', 'b']\n")
    (package / "tasks.py").write_text(textwrap.dedent("""\
        from kazeflow import asset
        from .helpers import NAMES

        @asset
        def total():
            return len(NAMES)
        """))
    tasks = importlib.import_module(f"{project.names['pkg']}.tasks")

    components = fingerprint(tasks.total.fn).components

    assert components[f"{project.names['pkg']}.helpers:NAMES"] == "NAMES = ['a', 'b']"


def test_an_asset_defined_in_an_indented_block_with_a_multiline_string_is_parsed(
        project: Project) -> None:
    project.write("assets", '''\
        from kazeflow import asset

        if True:
            @asset
            def query():
                return """
        SELECT 1
        """
        ''')

    (text,) = project.fingerprint("assets", "query").components.values()

    assert text.startswith("def query():")


# ------------------------------------------------------------------ golden digests
# The pre-image is canonical JSON of ["kazeflow.code", KEY_FORMAT_VERSION,
# CODE_HASH_VERSION, root component, sorted [name, text] pairs]. A change here means every
# stored code hash changes: bump CODE_HASH_VERSION on purpose, never by accident.

GOLDEN_PLAIN = '''\
def plain(rows):
    """Sum the rows."""
    total = 0  # running total
    for r in rows:
        total += r
    return total
'''

GOLDEN_WITH_HELPER = '''\
from kazeflow import asset

LIMIT = 10
SIZES = (1, 2)
TAGS = frozenset({"b", "c", "a"})


def keep(r):
    """Whether row ``r`` stays."""
    return r < LIMIT and str(r) not in TAGS


@asset
def filtered(rows):
    return [r for r in rows if keep(r)][: len(SIZES)]
'''


def test_golden_plain_function(project: Project) -> None:
    project.write("golden", GOLDEN_PLAIN)

    found = project.fingerprint("golden", "plain")

    assert dict(found.components) == {
        "plain": "def plain(rows):\n    total = 0\n    for r in rows:\n        total += r\n"
                 "    return total"}
    assert found.code_hash == "021ef78d8a4d67ecfdfa66867ca91f2819da9f59ac3e8cc509692bc9b164758e"


def test_golden_asset_calling_a_helper_and_reading_constants(project: Project) -> None:
    project.write("golden", GOLDEN_WITH_HELPER)

    found = project.fingerprint("golden", "filtered")

    assert dict(found.components) == {
        "LIMIT": "= 10",
        "SIZES": "= (1, 2)",
        "TAGS": "= frozenset({'a', 'b', 'c'})",
        "filtered": "def filtered(rows):\n    return [r for r in rows if keep(r)][:len(SIZES)]",
        "keep": "def keep(r):\n    return r < LIMIT and str(r) not in TAGS",
    }
    assert found.code_hash == "12f63853a912790d35fc09081331d0ed30368d7522fd9722558eae5028c1bc34"


BLOCKS_SOURCE = '''
import contextlib


def top(x):
    def inner(y):
        async def deepest():
            return y
        return deepest
    return inner


class Holder:
    def method(self):
        return 1

    class Nested:
        async def amethod(self):
            return 2


if True:
    def in_if():
        pass
else:
    def in_else():
        pass

try:
    def in_try():
        pass
except ValueError:
    def in_except():
        pass
else:
    def in_try_else():
        pass
finally:
    def in_finally():
        pass

for _ in ():
    def in_for():
        pass
else:
    def in_for_else():
        pass

while False:
    def in_while():
        pass

with contextlib.nullcontext():
    def in_with():
        pass

match 1:
    case 1:
        def in_case():
            pass

handler = lambda: [lambda: 0]  # noqa: E731 - lambdas are no definitions
'''


def test_the_syntax_helpers_agree_with_ast_walk() -> None:
    """The fast walk visits what ast.walk visits, in its order; the definition spans
    find every def wherever it is nested."""
    import ast

    from kazeflow.fingerprint._syntax import definition_spans, parse_module, walk

    tree = ast.parse(BLOCKS_SOURCE)
    assert walk(tree) == list(ast.walk(tree))
    expected = {(n.lineno, n.name): (n.lineno, n.end_lineno) for n in ast.walk(tree)
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert definition_spans(parse_module(BLOCKS_SOURCE)) == expected
    assert len(expected) == 16


TREE_OR_TEXT_SOURCE = '''
import functools

from kazeflow import asset

LIMIT = 3


@asset
def decorated(rows: list[int] = [1, LIMIT]) -> int:  # noqa: B006
    """A docstring, dropped."""
    def inner(y):
        """Also dropped."""
        return y + LIMIT
    return sum(inner(r) for r in rows)


@functools.lru_cache(maxsize=None)
def cached(x, *, scale=LIMIT):
    return x * scale


async def coroutine():
    import json
    from os import path as p
    return json.dumps(p.sep)


if LIMIT:
    def in_if(a):
        return [a, \\
                LIMIT]
'''


def test_a_function_analysed_from_its_module_tree_equals_one_parsed_from_its_text(
        tmp_path: Path) -> None:
    """A top-level function's node from the tree parsed for its file (first analysis in
    a run) gives exactly what parsing its own source text gives (the file's spans are
    known already): the two paths can never disagree on a code hash."""
    from kazeflow.fingerprint import _source

    name = f"tree_or_text_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(TREE_OR_TEXT_SOURCE)
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))
    functions = [module.decorated.fn, module.cached.__wrapped__, module.coroutine,
                 module.in_if]
    for fn in functions:
        clear_memory_caches()
        memo: dict[object, object] = {}
        from_tree = _source._encode(*_source._analyse(fn, memo))
        _, _, unused = memo["definitions", fn.__code__.co_filename]
        assert (fn.__code__.co_firstlineno, fn.__name__) not in unused  # its node was used
        assert len(unused) == len(functions) - 1
        from_text = _source._encode(*_source._analyse(fn, {}))  # spans known: text
        assert from_tree == from_text
        assert "docstring" not in from_tree[0] and "dropped" not in from_tree[0]


RUN_PATH_SCRIPT = '''
from pathlib import Path
from kazeflow import Flow, asset

HERE = Path(__file__).parent
FACTOR = {factor}


@asset
def scaled():
    return [FACTOR * x for x in range(3)], HERE.name


flow = Flow(["scaled"])
'''


def test_code_run_by_run_path_hashes_its_globals_like_a_script(tmp_path: Path) -> None:
    """A file run with runpy.run_path (module name "<run_path>", not in sys.modules)
    hashes the module-level values it reads as `python file.py` does: an edit of one
    re-runs it, and switching between the two ways re-runs nothing."""
    script = tmp_path / "pipeline.py"
    env = {**os.environ, "KAZEFLOW_HOME": str(tmp_path / "store")}

    def run(how: str) -> list[str]:
        code = {"main": "import runpy; r = runpy.run_path('pipeline.py', run_name='__main__')"
                        "['flow'].run()",
                "run_path": "import runpy; r = runpy.run_path('pipeline.py')['flow'].run()"}
        done = subprocess.run([sys.executable, "-c", code[how] + "; print(r.materialized)"],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return eval(done.stdout)  # noqa: S307 - our own tuple of names

    script.write_text(RUN_PATH_SCRIPT.format(factor=2))
    assert list(run("main")) == ["scaled"]
    assert list(run("run_path")) == []  # the same hash either way
    script.write_text(RUN_PATH_SCRIPT.format(factor=3))
    assert list(run("run_path")) == ["scaled"]  # the edited global is seen
    assert list(run("main")) == []
