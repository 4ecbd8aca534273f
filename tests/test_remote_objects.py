"""Objects elsewhere: a local folder or a bucket on a real S3 API on loopback (moto's
server, s3fs as the client), through one fixture. Writes are atomic and deduplicated,
every read is verified, corrupt objects are quarantined, verify and gc work, and a large
value streams."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from kazeflow import Config, Flow, IntegrityError, Store, asset


def _store(tmp_path, objects_location) -> Store:
    return Store(tmp_path / "work", objects=objects_location)


def _overwrite(store: Store, data_version: str, data: bytes) -> None:
    """Change an object's bytes behind kazeflow's back (a disk or a bucket going bad)."""
    objects = store.objects
    if hasattr(objects, "fs"):
        objects.fs.pipe_file(objects._key(data_version), data)
    else:
        path = objects.path(data_version)  # type: ignore[attr-defined]
        path.chmod(0o600)
        path.write_bytes(data)


def test_objects_round_trip_and_deduplicate(tmp_path, objects_location):
    with _store(tmp_path, objects_location) as store:
        values = [{"a": 1}, list(range(100_000)), b"x" * (3 << 20)]
        versions = [store.objects.put(value) for value in values]
        for (version, _), value in zip(versions, values, strict=True):
            assert store.objects.load(version) == value
        again = [store.objects.put(value) for value in values]
        assert again == versions
        assert sorted(dv for dv, _ in store.objects.iter_objects()) == \
            sorted(dv for dv, _ in versions)


def test_presence_agrees_with_each_object_whether_its_shard_is_listed_or_asked(
        tmp_path, objects_location):
    """present() lists a shard folder that holds several of the objects asked about and
    asks for the others one by one: either way exactly those there with their size."""
    with _store(tmp_path, objects_location) as store:
        objects = store.objects
        (a, a_size), (b, b_size), (c, c_size) = (objects.put([i] * 10) for i in range(3))
        used = {a[:2], b[:2], c[:2]}
        empty = next(f"{i:02x}" for i in range(256) if f"{i:02x}" not in used)

        def twin(dv: str, fill: str = "f") -> str:  # same shard, no such object
            return dv[:2] + (fill if dv[2:] != fill * 62 else "e") * 62

        wanted = [(a, a_size), (twin(a), a_size),  # a's shard: a there, its twin not
                  (b, b_size + 1), (twin(b), b_size),  # b there with another size
                  (c, c_size),  # alone in its shard (unless a or b shares it)
                  (twin(empty + a[2:]), 1), (twin(empty + a[2:], "d"), 1),  # no folder
                  (twin(empty + a[2:], "c"), 1)]
        assert objects.present(wanted) == {a, c}
        assert objects.present(wanted) == {dv for dv, size in wanted if objects.has(dv, size)}
        assert objects.present([(c, c_size)]) == {c} and objects.present([]) == set()


def test_a_flow_runs_and_then_reuses_everything(tmp_path, objects_location):
    @asset
    def numbers():
        return list(range(1000))

    @asset
    def total(numbers):
        return sum(numbers)

    with _store(tmp_path, objects_location) as store:
        flow = Flow(["total"], store=store)
        assert flow.run()["total"] == 499500
        again = flow.run()
        assert sorted(again.reused) == ["numbers", "total"] and again["total"] == 499500
        assert store.verify().ok


def test_a_corrupt_object_is_quarantined_and_made_again(tmp_path, objects_location):
    calls = []

    @asset
    def payload():
        calls.append(1)
        return {"rows": list(range(50))}

    with _store(tmp_path, objects_location) as store:
        flow = Flow(["payload"], store=store)
        flow.run()
        version = flow.history("payload")[0].data_version
        _overwrite(store, version, b"not a pickle of what it was")
        with pytest.raises(IntegrityError, match="corrupt"):
            store.objects.load(version)
        assert version not in dict(store.objects.iter_objects())  # moved aside
        assert flow.run()["payload"] == {"rows": list(range(50))} and len(calls) == 2
        assert store.verify().ok


class Number(Config):
    n: int = 0


def test_verify_and_gc(tmp_path, objects_location):
    @asset(config_schema=Number)
    def value(config):
        return f"value {config.n}"

    with _store(tmp_path, objects_location) as store:
        flow = Flow(["value"], store=store)
        for n in (1, 2, 3):
            flow.run(config={"value": {"n": n}})
        orphan, _ = store.objects.put("nobody records me")
        newest = flow.history("value")[0].data_version
        corrupt = flow.history("value")[1].data_version
        _overwrite(store, corrupt, b"rot")
        report = store.verify()
        assert report.corrupt == (corrupt,) and orphan in report.orphaned
        gc = store.gc(keep_last=1)
        assert gc.objects_removed == 2  # the orphan and the oldest value
        assert [dv for dv, _ in store.objects.iter_objects()] == [newest]
        assert store.verify().ok


def test_the_temp_key_path_leaves_only_whole_objects(tmp_path, s3_url):
    """Where a service has no conditional writes: a temp key, a copy, no temp left."""
    from kazeflow.store._remote import RemoteObjects

    objects = RemoteObjects(s3_url, conditional_writes=False)
    version, size = objects.put(list(range(10_000)))
    assert objects.load(version) == list(range(10_000))
    assert not objects.fs.exists(f"{objects._root}/tmp")
    stale = f"{objects._root}/tmp/left-by-a-dead-uploader"
    objects.fs.pipe_file(stale, b"half")
    assert objects.remove_stale_temps() == 0  # young: perhaps still uploading
    assert [dv for dv, _ in objects.iter_objects()] == [version]


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from kazeflow import Store
    store = Store(sys.argv[1], objects=sys.argv[2])
    import resource
    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    array = np.arange(int(sys.argv[3]) * 131072, dtype=np.float64)  # MiB, no temporaries
    store.objects.put([1])  # the store and the pickling machinery, loaded
    before = peak()
    version, size = store.objects.put(array)
    added = peak() - before
    loaded = store.objects.load(version)
    assert (loaded == array).all()
    print(version, size, added, array.nbytes)
""")


def test_a_large_value_streams_and_concurrent_writers_agree(tmp_path, objects_location):
    """Two processes write the same 64 MiB array at once: both succeed, one object is
    stored, and neither held a second copy of the array in memory while writing."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    args = [sys.executable, str(script), "", objects_location, "64"]
    writers = [subprocess.Popen([*args[:2], str(tmp_path / f"w{i}"), *args[3:]],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=os.environ.copy()) for i in range(2)]
    outputs = []
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        outputs.append(out.split())
    assert outputs[0][:2] == outputs[1][:2]
    for _, _, added, nbytes in outputs:
        # what writing added to the peak: buffers of fixed size (the hash's read-back,
        # two 8 MiB upload parts and the client's copies of them), not a second copy
        assert int(added) < 48 << 20 < int(nbytes), (int(added) >> 20, int(nbytes) >> 20)
    with Store(tmp_path / "w0", objects=objects_location) as store:
        stored = dict(store.objects.iter_objects())
        assert len(stored) == 2 and stored[outputs[0][0]] == int(outputs[0][1])  # + [1]


def test_import_kazeflow_does_not_import_fsspec():
    code = ("import sys, kazeflow, kazeflow.store; "
            "print(any(m.split('.')[0] in ('fsspec', 's3fs', 'botocore') "
            "for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
