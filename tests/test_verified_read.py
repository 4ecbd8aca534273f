"""What is unpickled is exactly what was hashed: an object rewritten in place while it is
loaded (good bytes, then a crafted pickle of the same size, again and again) is either
loaded as the good value or refused, and the crafted pickle never runs."""

import pickle
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from kazeflow import Flow, IntegrityError, ObjectNotFoundError, asset

FLIPPER = textwrap.dedent("""
    import os, sys, time
    path, good, crafted, stop = sys.argv[1:]
    versions = [open(good, "rb").read(), open(crafted, "rb").read()]
    i = 0
    while not os.path.exists(stop):
        try:
            with open(path, "r+b") as f:  # in place: same inode, same size
                f.write(versions[i % 2])
        except FileNotFoundError:  # quarantined: the loader puts it back
            time.sleep(0.0005)
        i += 1
""")


class _Marker:
    """Unpickling this creates the marker file: the crafted pickle's payload."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _crafted_like(good: bytes, marker: str, stream_length: int) -> bytes:
    """A pickle that creates ``marker`` when unpickled, padded into the first
    ``stream_length`` bytes of ``good`` (the rest, e.g. out-of-band buffers, kept)."""
    payload = pickle.dumps(_Marker(marker), protocol=5)
    assert len(payload) <= stream_length
    return payload.ljust(stream_length, b"\0") + good[stream_length:]


@pytest.mark.parametrize("kind", ["plain", "out_of_band"])
def test_an_object_rewritten_while_loaded_never_runs_the_crafted_pickle(tmp_path, kind):
    if kind == "plain":
        value = list(range(20_000))
    else:
        value = np.arange(1 << 18, dtype=np.int64)  # 2 MiB: its buffer goes out of band

    @asset
    def thing():
        return value

    flow = Flow(["thing"], store=tmp_path / "store")
    flow.run()
    record = flow.history("thing")[0]
    path = flow.store.objects.path(record.data_version)
    good = path.read_bytes()
    stream_length = len(good) if kind == "plain" else len(good) - value.nbytes - 24
    marker = tmp_path / "pwned"
    crafted = _crafted_like(good, str(marker), stream_length)
    assert len(crafted) == len(good)
    (tmp_path / "good").write_bytes(good)
    (tmp_path / "crafted").write_bytes(crafted)
    stop = tmp_path / "stop"
    flipper = subprocess.Popen([sys.executable, "-c", FLIPPER, str(path), str(tmp_path / "good"),
                                str(tmp_path / "crafted"), str(stop)])
    loaded = refused = 0
    try:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            try:
                got = flow.load("thing")
            except (IntegrityError, ObjectNotFoundError):
                refused += 1
                temp = tmp_path / "restore"
                temp.write_bytes(good)
                path.parent.mkdir(exist_ok=True)
                temp.replace(path)  # the good object back where the flipper finds it
                continue
            assert got == value if kind == "plain" else np.array_equal(got, value)
            loaded += 1
    finally:
        stop.touch()
        flipper.wait(timeout=10)
    assert not marker.exists(), "the crafted pickle was executed"
    assert loaded > 0 and refused > 0, (loaded, refused)  # the race really happened
