"""Everything a run or a status check needs to know of each planned asset up front:
its effective config and config hash, and its code fingerprint (computed once, before any
asset executes)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from kazeflow import _codehash
from kazeflow._hashing import config_hash
from kazeflow._inputs import InputFiles
from kazeflow.assets import Asset
from kazeflow.config import Config, build_config
from kazeflow.errors import ConfigError


class PreparedAsset(NamedTuple):
    """An asset with its effective config and code fingerprint for one run (a tuple: one
    is made per planned asset and run)."""

    asset: Asset
    config: Config | None
    config_hash: str
    code: _codehash.CodeFingerprint
    #: ``file:<path>`` → content hash of each file the asset reads (``reads=``).
    files: dict[str, str]

    @property
    def name(self) -> str:
        return self.asset.name

    @property
    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict() if self.config is not None else {}


def prepare(plan: Sequence[Asset], config: Mapping[str, Any] | None,
            sources: _codehash.SourceCache | None = None,
            files: InputFiles | None = None) -> dict[str, PreparedAsset]:
    """Validate ``config`` against every planned asset, fingerprint their code (reusing
    the analyses in ``sources`` of functions whose files did not change) and hash the
    files they read (a stat each for files ``files`` has hashed before).

    Raises:
        ConfigError: see :func:`effective_configs`.
        DefinitionError: an asset reads a path that does not exist.
    """
    files = files or InputFiles(None)
    configs = effective_configs(plan, config)
    prepared = {}
    for item in plan:
        cfg = configs[item.name]
        code = (_codehash.code_version_fingerprint(item.code_version) if item.code_version
                else _codehash.fingerprint(item.fn, sources, asset_name=item.name,
                                           reads_declared=item.reads is not None))
        prepared[item.name] = PreparedAsset(
            item, cfg, config_hash(cfg.to_dict() if cfg is not None else None), code,
            files.versions(item))
    return prepared


def effective_configs(plan: Sequence[Asset], config: Mapping[str, Any] | None
                      ) -> dict[str, Config | None]:
    """Each planned asset's config: ``config`` checked against its schema, with defaults.

    Raises:
        ConfigError: config for an asset outside the plan or without ``config_schema``,
            or config that its schema rejects.
    """
    by_name = {a.name: a for a in plan}
    config = {} if config is None else config
    if not isinstance(config, Mapping):
        raise ConfigError("config must map asset names to their settings, e.g. "
                          "{'processed_data': {'multiplier': 2}}; got "
                          f"{type(config).__name__}")
    for name in config:
        if name not in by_name:
            close = difflib.get_close_matches(str(name), list(by_name), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else \
                f"; the flow plans: {', '.join(by_name)}"
            raise ConfigError(f"config given for {name!r}, which is not an asset of this "
                              f"flow{hint}", asset_name=str(name))
        if by_name[name].config_schema is None:
            raise ConfigError(
                f"config given for asset {name!r}, which declares no config_schema; add "
                f"@asset(config_schema=...) or drop its config", asset_name=name)
    return {item.name: None if item.config_schema is None else
            build_config(item.config_schema, config.get(item.name), item.name)
            for item in plan}
