"""Files an asset declares it reads (``@asset(reads=[...])``): each matched file's content
hash enters the asset's cache key as an input named ``file:<path>``, beside its upstreams'
data versions, so editing the file re-runs the asset (and its downstream only if the
result changes).

A path is shown and keyed relative to the folder of the file that defines the asset (so
moving the project re-runs nothing), an absolute one as it is. Deciding costs one stat
per file: a file whose size, mtime, inode and ctime are those it had when it was last
hashed is not read again (a persistent cache, saved by runs).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

from kazeflow.assets import Asset
from kazeflow.errors import DefinitionError
from kazeflow.fingerprint import _cachefile

#: The prefix of an input file's name among an asset's upstream versions (asset names
#: are identifiers: no asset can be called that); and of a tracked library's.
FILE_PREFIX = "file:"
LIBRARY_PREFIX = "lib:"
#: Text files up to this size are kept with their hash, for diffs in ``why``.
TEXT_LIMIT = 64 * 1024
#: A file modified this recently may change again within the same mtime tick.
RACY_SECONDS = 2.0
_TAG = ("kazeflow.inputs", 1)

Signature = tuple[int, int, int, int]  # size, mtime_ns, inode, ctime_ns


def is_file_input(name: str) -> bool:
    """Whether an upstream version's name is an input file (not an asset)."""
    return name.startswith(FILE_PREFIX)


def shown(name: str) -> str:
    """The path of the input file named ``name`` (``file:data/raw.csv`` → ``data/raw.csv``)."""
    return name[len(FILE_PREFIX):]


class InputFiles:
    """Content hashes of input files, cached at ``cache_path`` across processes."""

    def __init__(self, cache_path: Path | None) -> None:
        self.cache_path = cache_path
        self._hashes: dict[str, tuple[Signature, str]] | None = None
        self._paths: dict[str, Path] = {}  # input name → file, for this process
        self._small: dict[Path, tuple[str, bytes]] = {}  # small files read: hash, bytes
        self._changed = False
        self._lock = threading.Lock()

    def versions(self, item: Asset) -> dict[str, str]:
        """Input name → content hash of every file ``item`` reads, in path order.

        Raises:
            DefinitionError: a path without glob characters names no file or folder.
        """
        if not item.reads:
            return {}
        base = Path(item.reads_base)
        found = {}
        for pattern in item.reads:
            for path in _expand(base, pattern, item.name):
                name = FILE_PREFIX + _key(base, path)
                self._paths[name] = path
                found[name] = self._hash(path)
        return dict(sorted(found.items()))

    def text(self, name: str, content_hash: str) -> str | None:
        """The text of the input file ``name`` if it is small UTF-8 text whose content
        hash is ``content_hash`` (it has not changed since), else None."""
        path = self._paths.get(name)
        if path is None:
            return None
        try:
            known, data = self._small.get(path, (None, b""))
            if known != content_hash:  # not read by this process: read it now
                with open(path, "rb") as f:
                    data = f.read(TEXT_LIMIT + 1)
                if len(data) > TEXT_LIMIT or hashlib.sha256(data).hexdigest() != content_hash:
                    return None
            return data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def save(self) -> None:
        """Write the cache if it learnt hashes (atomically; errors are only logged)."""
        if not self._changed or self._hashes is None:
            return
        self._changed = False
        _cachefile.write(self.cache_path, _TAG, self._hashes)

    def _hash(self, path: Path) -> str:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise _unreadable(path, exc) from exc
        signature = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        hashes = self._loaded()
        known = hashes.get(str(path))
        if known is not None and known[0] == signature:
            return known[1]
        digest = hashlib.sha256()
        first = b""
        try:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    first = first or chunk
                    digest.update(chunk)
        except OSError as exc:
            raise _unreadable(path, exc) from exc
        content = digest.hexdigest()
        if len(first) <= TEXT_LIMIT:  # the whole file: kept for its text, not read again
            self._small[path] = (content, first)
        if st.st_mtime_ns < time.time_ns() - RACY_SECONDS * 1e9:  # else: may change unseen
            with self._lock:
                hashes[str(path)] = (signature, content)
                self._changed = True
        return content

    def _loaded(self) -> dict[str, tuple[Signature, str]]:
        if self._hashes is None:
            self._hashes = _cachefile.read(self.cache_path, _TAG)
        return self._hashes


def _unreadable(path: Path, exc: OSError) -> DefinitionError:
    return DefinitionError(f"cannot read the input file {path}: {exc.strerror}; fix its "
                           "permissions or @asset(reads=...)")


def _expand(base: Path, pattern: str, asset_name: str) -> Iterator[Path]:
    """The files ``pattern`` names: a file, every file under a folder, or glob matches
    (``**`` spans folders); a plain path must exist."""
    import glob  # only for declared reads

    path = base / pattern
    if glob.has_magic(pattern):
        matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        for match in matches:
            yield from _files(match)
        return
    if not path.exists():
        raise DefinitionError(
            f"asset {asset_name!r} reads {pattern!r}, which does not exist (looked at "
            f"{path}); create it, or fix @asset(reads=...) (relative paths start at the "
            "folder of the file that defines the asset)")
    yield from _files(path)


def _files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                yield Path(folder, name)
    elif path.is_file():
        yield path


def _key(base: Path, path: Path) -> str:
    """``path`` as it is keyed and shown: relative to ``base`` if under it, else absolute."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def texts(files: InputFiles, versions: Mapping[str, str], known: Collection[str] = ()
          ) -> dict[str, dict[str, str]]:
    """Content hash → {path: text} of the small text files among ``versions`` whose
    hash is not in ``known`` (stored already)."""
    found = {}
    for name, content_hash in versions.items():
        if is_file_input(name) and content_hash not in known and \
                (text := files.text(name, content_hash)) is not None:
            found[content_hash] = {shown(name): text}
    return found
