"""The engine (scheduling, early starts, recording, the write batch, asset calls,
freshness) is written against the store's public interface: it imports no private
module of ``kazeflow.store``."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kazeflow"
ENGINE = ["_execute.py", "_early.py", "_record.py", "_runstate.py", "_batch.py",
          "_tasks.py", "_evaluate.py", "freshness.py", "flow.py"]


def private_store_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [n for n in names if n.startswith("kazeflow.store._")]
    return found


@pytest.mark.parametrize("module", ENGINE)
def test_the_engine_imports_only_the_store_interface(module):
    assert private_store_imports(PACKAGE / module) == []


def test_the_check_sees_a_private_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from kazeflow.store import _objects\nimport kazeflow.store._locks\n")
    assert private_store_imports(probe) == ["kazeflow.store._objects",
                                            "kazeflow.store._locks"]
