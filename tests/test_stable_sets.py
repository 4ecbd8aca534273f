"""Equal sets, equal bytes: a set or frozenset of strings gets one data version whatever
the process's hash seed, so a forced re-run in another process spares its downstream.
Each value is pickled in fresh processes with different ``PYTHONHASHSEED``s."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import cloudpickle

from kazeflow import Store
from kazeflow.store import _sets

#: Each builds a value from its seed-free description; big ones pass the in-memory limit
#: (64 KiB) and the background-hash one (4 MiB), so the pickle is redone in a file.
VALUES = {
    "small set": "{'alpha', 'beta', 'gamma', 'delta'}",
    "frozenset": "frozenset({'x', 'y', 'z', 'w', 'v'})",
    "nested": "{'tags': frozenset({('a', 1), ('b', 2), ('c', frozenset({'p', 'q'}))}),"
              " 'mixed': {1, 'one', 2.5, None, b'raw', (3, 'three')}, 'n': [1, 2, 3]}",
    "shared": "(lambda s: [s, s, {'k': s}])({'p', 'q', 'r', 's'})",
    "100k strings": "{f'item-{i}' for i in range(100_000)}",
    "500k strings in a dict": "{'words': {f'w{i}' for i in range(500_000)}, 'x': 1}",
    "many small frozensets": "[frozenset({f'a{i}', f'b{i}', f'c{i}'}) for i in range(20_000)]",
}

_CHILD = textwrap.dedent("""
    import json, sys
    from kazeflow import Store
    store = Store(sys.argv[1])
    out = {}
    for name, source in json.loads(sys.argv[2]).items():
        value = eval(source)
        version, _ = store.objects.put(value)
        back = store.objects.load(version)
        assert back == value and type(back) is type(value), name
        out[name] = version
    shared = store.objects.load(out["shared"])
    assert shared[0] is shared[1] is shared[2]["k"]
    print(json.dumps(out))
""")


def _versions_in_child(root: Path, seed: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(root), json.dumps(VALUES)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_sets_of_strings_get_one_data_version_whatever_the_hash_seed(tmp_path):
    first, second, third = (_versions_in_child(tmp_path / "store", seed)
                            for seed in ("1", "2", "12345"))
    assert first == second == third
    assert Store(tmp_path / "store").verify().ok


def test_the_order_of_a_set_depends_on_the_seed_without_sorting():
    """The premise: plain cloudpickle gives seed-dependent bytes for these values."""
    code = "import cloudpickle, hashlib; print(hashlib.sha256(cloudpickle.dumps(" \
           "{'alpha', 'beta', 'gamma', 'delta'}, protocol=5)).hexdigest())"
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2", "3", "4", "5")}
    assert len(digests) > 1


def test_a_value_without_sets_keeps_cloudpickles_bytes_even_when_its_bytes_look_like_one(
        store):
    """A false match (bytes that look like a set's opcodes) pickles again to the same
    bytes; a value with no set at all is cloudpickle's own stream."""
    looks_like_a_set = b"\x8f\x94(" * 10 + b"\x94\x91\x94"
    for value in ({"a": [1, 2.5, "x"]}, looks_like_a_set, [looks_like_a_set] * 3):
        version, _ = store.objects.put(value)
        assert store.objects.load(version) == value
        assert hashlib.sha256(cloudpickle.dumps(value, protocol=5)).hexdigest() == version
    assert _sets.may_hold_a_set(cloudpickle.dumps([looks_like_a_set], protocol=5))


def test_sets_that_cannot_be_ordered_are_pickled_as_they_are(store):
    class Tag:
        def __init__(self, name):
            self.name = name

        def __eq__(self, other):
            return isinstance(other, Tag) and other.name == self.name

        def __hash__(self):
            return hash(self.name)

    value = {"objects": {Tag("a"), Tag("b")}, "nan": {float("nan"), None, "s"},
             "strings": {"b", "a"}}
    version, _ = store.objects.put(value)
    back = store.objects.load(version)
    assert {t.name for t in back["objects"]} == {"a", "b"}
    assert back["strings"] == {"a", "b"} and len(back["nan"]) == 3
    assert store.verify().ok


def test_a_foreign_persistent_id_is_a_clear_unpickling_error():
    class Foreign(pickle.Pickler):
        def persistent_id(self, obj):
            return ("elsewhere", 1) if obj == "x" else None

    out = io.BytesIO()
    Foreign(out, protocol=5).dump(["x"])
    try:
        _sets.Unpickler(out.getvalue(), []).load()
    except pickle.UnpicklingError as exc:
        assert "unsupported persistent id" in str(exc)
    else:
        raise AssertionError("loaded a foreign persistent id")


_FLOW = textwrap.dedent("""
    import sys
    from kazeflow import Flow, asset

    @asset
    def vocabulary():
        return {"apple", "banana", "cherry", "date", "elderberry", "fig", "grape"}

    @asset
    def sizes(vocabulary):
        print("sizes ran", file=sys.stderr)
        return sorted(len(w) for w in vocabulary)

    force = sys.argv[2:] and sys.argv[2].split(",")
    result = Flow(["sizes"], store=sys.argv[1]).run(force=force or False)
    print(",".join(result.reused))
""")


def test_forcing_a_set_asset_in_another_process_spares_its_downstream(tmp_path):
    script = tmp_path / "pipeline.py"
    script.write_text(_FLOW)
    root = str(tmp_path / "store")

    def run(seed: str, *force: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, str(script), root, *force],
                              env={**os.environ, "PYTHONHASHSEED": seed},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    assert "sizes ran" in run("1").stderr
    for seed in ("2", "3", "4", "5"):
        forced = run(seed, "vocabulary")
        assert "sizes ran" not in forced.stderr
        assert forced.stdout.strip() == "sizes"
    subprocess.run([sys.executable, str(script), str(tmp_path / "fresh")], check=True,
                   env={**os.environ, "PYTHONHASHSEED": "6"}, capture_output=True)
    versions = {Store(where).materialization("vocabulary").data_version
                for where in (root, tmp_path / "fresh")}
    assert len(versions) == 1
