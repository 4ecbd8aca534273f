"""SHA-256 over tagged, canonical pre-images: config hash and cache key.

Every pre-image is canonical JSON of a list that starts with a type tag and the key
format version, so digests of different kinds can never collide and a change of format
changes every key. Golden tests pin the digests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from json.encoder import encode_basestring
from typing import Any

from kazeflow.config import canonical_json

#: Bump when the pre-image of any key changes; every cache key changes with it.
KEY_FORMAT_VERSION = 1


def tagged_digest(tag: str, *parts: Any) -> str:
    """Hex SHA-256 of canonical JSON ``[tag, KEY_FORMAT_VERSION, *parts]``."""
    pre_image = canonical_json([tag, KEY_FORMAT_VERSION, *parts])
    return hashlib.sha256(pre_image.encode("utf-8")).hexdigest()


def config_hash(effective_config: Mapping[str, Any] | None) -> str:
    """Hash of the effective config (defaults applied); ``None`` for assets without one."""
    if not effective_config:
        return _EMPTY_CONFIG_HASH
    return tagged_digest("kazeflow.config", dict(effective_config))


def cache_key(asset_name: str, code_hash: str, config_digest: str,
              upstream_versions: Mapping[str, str]) -> str:
    """The key under which a materialization of ``asset_name`` can be reused.

    Equal to ``tagged_digest("kazeflow.cache_key", asset_name, code_hash, config_digest,
    sorted(upstream_versions.items()))``, built directly: every part is an identifier or
    a hex digest, which canonical JSON writes as the text between two quotes. This runs
    once per planned asset, so it is worth the shortcut (a test checks both agree).
    """
    upstream = ",".join([f'["{name}","{version}"]'  # a list joins faster than a generator
                         for name, version in sorted(upstream_versions.items())])
    pre_image = (f'["kazeflow.cache_key",{KEY_FORMAT_VERSION},"{asset_name}","{code_hash}",'
                 f'"{config_digest}",[{upstream}]]')
    return hashlib.sha256(pre_image.encode()).hexdigest()


def code_digest(version: int, root: str, components: Iterable[tuple[str, str]]) -> str:
    """The code hash of ``root`` from its sorted (name, normalised text) ``components``.

    Equal to ``tagged_digest("kazeflow.code", version, root, [[name, text], …])``, built
    directly: every part is a string, which canonical JSON writes with json's own string
    encoder (``encode_basestring``, as ``ensure_ascii=False`` does). Runs once per planned
    asset; a test checks both agree.
    """
    body = ",".join([f"[{encode_basestring(name)},{encode_basestring(text)}]"
                     for name, text in components])
    pre_image = (f'["kazeflow.code",{KEY_FORMAT_VERSION},{version},{encode_basestring(root)},'
                 f"[{body}]]")
    return hashlib.sha256(pre_image.encode("utf-8")).hexdigest()


_EMPTY_CONFIG_HASH = tagged_digest("kazeflow.config", {})
