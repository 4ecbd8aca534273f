"""Golden digests of the hashed pre-images: a change here changes every stored key."""

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from kazeflow.fingerprint._hashing import (
    KEY_FORMAT_VERSION,
    cache_key,
    code_digest,
    config_hash,
    tagged_digest,
)

HEX = st.text("0123456789abcdef", min_size=64, max_size=64)
NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)


def test_key_format_version_is_pinned():
    assert KEY_FORMAT_VERSION == 1


def test_golden_config_hash():
    pre_image = '["kazeflow.config",1,{"a":[1,2],"b":"x"}]'
    assert config_hash({"b": "x", "a": [1, 2]}) == hashlib.sha256(pre_image.encode()).hexdigest()
    assert config_hash({"b": "x", "a": [1, 2]}) == \
        "bf5867981102647414857c343ba07248f19a53898914a041d24cdf4716d9e248"
    assert config_hash(None) == config_hash({}) == tagged_digest("kazeflow.config", {}) == \
        "63463e49298c96ac0c7afa9d3c88330123811d40b9dd1f7daa013f0fce7ea7f1"


def test_golden_cache_key():
    key = cache_key("report", "c" * 64, "f" * 64, {"raw": "1" * 64, "clean": "2" * 64})
    pre_image = (f'["kazeflow.cache_key",1,"report","{"c" * 64}","{"f" * 64}",'
                 f'[["clean","{"2" * 64}"],["raw","{"1" * 64}"]]]')
    assert key == hashlib.sha256(pre_image.encode()).hexdigest() == \
        "7488a89d82d67aaab478186fd72a27c806964a72799e0bd197ffbb757ad6136a"


@given(NAME, HEX, HEX, st.dictionaries(NAME, HEX, max_size=4))
def test_cache_key_shortcut_equals_the_canonical_pre_image(name, code, config, upstream):
    assert cache_key(name, code, config, upstream) == tagged_digest(
        "kazeflow.cache_key", name, code, config, sorted(upstream.items()))


@given(st.text(), st.lists(st.tuples(st.text(), st.text()), max_size=4),
       st.integers(min_value=0, max_value=99))
def test_code_digest_shortcut_equals_the_canonical_pre_image(root, components, version):
    # any text: quotes, backslashes, newlines, control and non-ASCII characters
    components = sorted(components)
    assert code_digest(version, root, components) == tagged_digest(
        "kazeflow.code", version, root, [list(c) for c in components])
