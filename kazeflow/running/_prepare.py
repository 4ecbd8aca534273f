"""Everything a run or a status check needs to know of each planned asset up front:
its effective config and config hash, and its code fingerprint (computed once, before any
asset executes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from kazeflow.assets import Asset
from kazeflow.config import Config, build_config
from kazeflow.errors import ConfigError
from kazeflow.fingerprint import _code
from kazeflow.fingerprint._files import LIBRARY_PREFIX, InputFiles
from kazeflow.fingerprint._hashing import config_hash
from kazeflow.fingerprint._libraries import LibraryVersions


class PreparedAsset(NamedTuple):
    """An asset with its effective config and code fingerprint for one run (a tuple: one
    is made per planned asset and run)."""

    asset: Asset
    config: Config | None
    config_hash: str
    code: _code.CodeFingerprint
    #: What the key takes from outside the flow: ``file:<path>`` → content hash of each
    #: file the asset reads (``reads=``), ``lib:<distribution>`` → version of each
    #: library its code imports when it tracks them (``track_libraries=``).
    external: dict[str, str]
    #: Distribution → version of each library its code imports (recorded either way).
    libraries: dict[str, str]

    @property
    def name(self) -> str:
        return self.asset.name

    @property
    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict() if self.config is not None else {}


class Lookups(NamedTuple):
    """What preparing reuses across processes, each cached in the store's cache folder:
    analyses of source files, hashes of input files, distributions of libraries."""

    sources: _code.SourceCache
    files: InputFiles
    libraries: LibraryVersions

    @classmethod
    def in_folder(cls, folder: Path | None) -> Lookups:
        """The caches in ``folder`` (None: this process only)."""
        return cls(_code.source_cache(folder / "sources.marshal" if folder else None),
                   InputFiles(folder / "inputs.marshal" if folder else None),
                   LibraryVersions(folder / "libraries.marshal" if folder else None))

    def save(self) -> None:
        """Save what each cache learnt (a run does; asking writes nothing)."""
        self.sources.save()
        self.files.save()
        self.libraries.save()


def prepare(plan: Sequence[Asset], config: Mapping[str, Any] | None,
            lookups: Lookups | None = None, track_libraries: bool = False
            ) -> dict[str, PreparedAsset]:
    """Validate ``config`` against every planned asset, fingerprint their code (reusing
    analyses of functions whose files did not change), hash the files they read (a stat
    each for files hashed before) and look up the versions of the libraries they import
    (in the key of assets that track them, or all with ``track_libraries``).

    Raises:
        ConfigError: see :func:`effective_configs`.
        DefinitionError: an asset reads a path that does not exist.
    """
    lookups = lookups or Lookups.in_folder(None)
    configs = effective_configs(plan, config)
    prepared = {}
    for item in plan:
        cfg = configs[item.name]
        code = (_code.code_version_fingerprint(item.code_version) if item.code_version
                else _code.fingerprint(item.fn, lookups.sources, asset_name=item.name,
                                           reads_declared=item.reads is not None))
        external = lookups.files.versions(item)
        libraries = lookups.libraries.versions(code.libraries) if code.libraries else {}
        if libraries and (track_libraries or item.track_libraries):
            external.update((LIBRARY_PREFIX + name, version)
                            for name, version in libraries.items())
        prepared[item.name] = PreparedAsset(
            item, cfg, config_hash(cfg.to_dict() if cfg is not None else None), code,
            external, libraries)
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
            import difflib  # only for a message

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
