"""Config: the read-only settings handed to an asset, plain or as a typed schema.

A plain ``Config`` accepts any JSON-able keys. A subclass with annotated fields is a
schema: values are checked (unknown keys, wrong types, missing required fields) when the
config is built, which ``Flow.run`` does for every planned asset before anything runs.

Example::

    class TrainConfig(Config):
        epochs: int = 10
        lr: float

    TrainConfig({"lr": 0.1}).epochs  # 10
"""

from __future__ import annotations

import copy
import json
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from kazeflow.errors import ConfigError

_MISSING = object()


def canonical_json(value: Any) -> str:
    """Serialize ``value`` as canonical JSON (sorted keys, no spaces, no NaN).

    Raises:
        TypeError, ValueError: when ``value`` is not JSON-able.
    """
    return _CANONICAL.encode(value)


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False)  # one encoder: built once, not per call


class Config(Mapping[str, Any]):
    """Read-only mapping of an asset's settings; subclass with annotations for a schema.

    Args:
        values: the settings given by the user; typed schemas fill in their defaults.

    Raises:
        ConfigError: unknown key, wrong type, missing required field or a value that
            is not JSON-able.
    """

    _fields: ClassVar[dict[str, tuple[Any, Any]] | None] = None
    __slots__ = ("_data",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hints = typing.get_type_hints(cls)
        fields: dict[str, tuple[Any, Any]] = {}
        for klass in reversed(cls.__mro__):
            for name in klass.__dict__.get("__annotations__", {}):
                if name.startswith("_") or typing.get_origin(hints[name]) is ClassVar:
                    continue
                fields[name] = (hints[name], klass.__dict__.get(name, _MISSING))
        for name in fields:  # defaults live in _fields; attribute access goes to the data
            if name in cls.__dict__:
                delattr(cls, name)
        cls._fields = fields

    def __init__(self, values: Mapping[str, Any] | None = None, /, *,
                 asset_name: str | None = None) -> None:
        if values is not None and not isinstance(values, Mapping):
            raise ConfigError(
                f"config{_for(asset_name)} must be a mapping of settings, "
                f"got {type(values).__name__}", asset_name=asset_name)
        data = dict(values or {})
        if self._fields is not None:
            data = self._validate(data, asset_name)
        for key, value in data.items():
            if not isinstance(key, str):
                raise ConfigError(f"config{_for(asset_name)} key {key!r} is not a string",
                                  asset_name=asset_name)
            try:
                canonical_json(value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    f"config{_for(asset_name)} value {key!r} = {value!r} is not JSON-able "
                    f"({exc}); use numbers, strings, booleans, None, lists and dicts",
                    asset_name=asset_name, key=key) from None
        object.__setattr__(self, "_data", data)

    def _validate(self, data: dict[str, Any], asset_name: str | None) -> dict[str, Any]:
        assert self._fields is not None
        schema = type(self).__name__
        unknown = sorted(set(data) - set(self._fields))
        if unknown:
            raise ConfigError(
                f"config{_for(asset_name)} has unknown key {unknown[0]!r}; "
                f"{schema} accepts: {', '.join(self._fields) or '(no keys)'}",
                asset_name=asset_name, key=unknown[0])
        effective: dict[str, Any] = {}
        for name, (hint, default) in self._fields.items():
            if name in data:
                value = data[name]
            elif default is not _MISSING:
                value = copy.deepcopy(default)
            else:
                raise ConfigError(
                    f"config{_for(asset_name)} is missing required field {name!r} "
                    f"({_type_name(hint)}) of {schema}", asset_name=asset_name, key=name)
            if not _matches(value, hint):
                raise ConfigError(
                    f"config{_for(asset_name)} field {name!r} must be {_type_name(hint)}, "
                    f"got {value!r} ({type(value).__name__})", asset_name=asset_name, key=name)
            if hint is float and isinstance(value, int):
                value = float(value)  # 1 and 1.0 are the same config: one hash, one value
            effective[name] = value
        return effective

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._data,))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        """Return a copy of the effective settings as a plain dict."""
        return dict(self._data)


def _for(asset_name: str | None) -> str:
    return f" for asset {asset_name!r}" if asset_name else ""


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the annotation ``hint`` (the JSON-shaped subset of typing)."""
    if hint is Any or hint is object:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(_matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(_matches, value, args))
        return not args or all(_matches(item, args[0]) for item in value)
    if origin is dict or hint is dict or origin in (Mapping, typing.Mapping):
        if not isinstance(value, Mapping):
            return False
        if not args:
            return True
        return all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an annotation we cannot check (a TypeVar, a string): accept


def build_config(schema: type[Config], values: Mapping[str, Any] | None,
                 asset_name: str) -> Config:
    """Build the effective config of ``asset_name`` from user ``values``."""
    if isinstance(values, Config) and type(values) is schema:
        return values
    if isinstance(values, Config):
        values = values.to_dict()
    return schema(values, asset_name=asset_name)
