"""Equal sets, equal bytes: sets and frozensets of plain values pickled in sorted order.

pickle writes a set in its iteration order, which for strings depends on the process's
hash seed (``PYTHONHASHSEED``) and for any element type on how the set was built: equal
data could get another data version in another process, and a forced re-run would then
re-run its downstream for nothing. C pickle calls no hook for an exact set except
``persistent_id``, and calling Python for every object pickled costs several times the
pickling itself; so a value is pickled as usual first, and only when its stream may hold
a set (:func:`may_hold_a_set`) pickled again with :class:`SortingSets`, whose
``persistent_id`` writes each set of plain values (str, bytes, numbers, None and tuples
or frozensets of them) as its sorted elements.
:class:`Unpickler` builds them back; a set seen twice is one set again.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

_SETS = frozenset({set, frozenset})
_ATOMS = (str, bytes, int, float, bool, type(None))
_SAME_KIND = ({str}, {bytes})
_NUMBERS = {int, float, bool}
#: Rank of each plain type in the sort key: values of one rank compare with each other.
_RANK = {type(None): 0, bool: 1, int: 1, float: 1, str: 2, bytes: 3, tuple: 4, frozenset: 5}


def may_hold_a_set(frame: bytes) -> bool:
    """Whether ``frame`` (one pickle frame as C pickle writes it, protocol 4 or 5) may
    hold a set or frozenset with elements: a set is EMPTY_SET, MEMOIZE, MARK; a frozenset
    ends FROZENSET, MEMOIZE after its last element, whose own last opcode is looked at
    (MEMOIZE, BINGET, LONG_BINGET, NONE, NEWTRUE, NEWFALSE, BININT1, BININT2, BININT or
    BINFLOAT) so that random bytes seldom match, or starts the frame (after the FRAME
    opcode and its length: the last element ended the previous frame). A false match
    costs time only."""
    if b"\x8f\x94(" in frame:
        return True
    at = frame.find(b"\x91\x94")
    while at != -1:
        if (at == 9 or frame[at - 1] in _LAST_BYTE or frame[at - 2] in _SECOND_TO_LAST
                or frame[at - 3] == 0x4D or frame[at - 5] in _FIFTH_TO_LAST
                or frame[at - 9] == 0x47):
            return True
        at = frame.find(b"\x91\x94", at + 2)
    return False


_LAST_BYTE = frozenset(b"\x94N\x88\x89")
_SECOND_TO_LAST = frozenset(b"hK")
_FIFTH_TO_LAST = frozenset(b"jJ")


def _key(value: Any) -> tuple[int, Any]:
    """A sort key under which any two plain values compare (rank first)."""
    kind = type(value)
    if kind is tuple:
        return 4, tuple(map(_key, value))
    if kind is frozenset:
        return 5, tuple(sorted(map(_key, value)))
    return _RANK[kind], value if value is not None else 0


def _is_plain(value: Any) -> bool:
    kind = type(value)
    if kind in _ATOMS:
        return True
    return (kind is tuple or kind is frozenset) and all(map(_is_plain, value))


def sorted_elements(values: set[Any] | frozenset[Any]) -> list[Any] | None:
    """The elements of ``values`` in an order that depends only on them; None when one
    is not a plain value (then the set is pickled as it is)."""
    kinds = set(map(type, values))
    try:
        if kinds in _SAME_KIND or kinds <= _NUMBERS:
            return sorted(values)  # at C speed
        if all(map(_is_plain, values)):
            return sorted(values, key=_key)
    except TypeError:  # e.g. NaN against None: not plain enough
        pass
    return None


class SortingSets:
    """Pickler mixin (first base): sets of plain values as their sorted elements."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: id of each set written -> its number and the set (kept alive: a set made by
        #: a reducer while pickling must not free its id for another one).
        self._numbered: dict[int, tuple[int, Any]] = {}

    def persistent_id(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is not set and kind is not frozenset:
            return None
        seen = self._numbered.get(id(obj))
        if seen is not None:
            return "ref", seen[0]
        elements = sorted_elements(obj)
        if elements is None:
            return None
        number = len(self._numbered)
        self._numbered[id(obj)] = number, obj
        return kind.__name__, number, elements


class Unpickler(pickle.Unpickler):
    """Unpickles what :class:`SortingSets` wrote (and any other pickle)."""

    def __init__(self, stream: Any, buffers: list[Any]) -> None:
        super().__init__(io.BytesIO(stream), buffers=buffers)
        self._sets: dict[int, Any] = {}

    def persistent_load(self, pid: Any) -> Any:
        if type(pid) is tuple and len(pid) == 2 and pid[0] == "ref":
            return self._sets[pid[1]]
        if type(pid) is tuple and len(pid) == 3 and pid[0] in ("set", "frozenset"):
            built = self._sets[pid[1]] = (set if pid[0] == "set" else frozenset)(pid[2])
            return built
        raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
