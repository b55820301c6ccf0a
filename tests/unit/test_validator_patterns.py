"""The generated validator's hand-written pattern matchers agree with re.search (jsonschema's semantics)."""
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ociruntime import _validator_gen as gen

ALPHABET = "RLIMIT_ABCZabcup0129, -KMGB:\n\r.\u00e9Ｚ１"
SAMPLES = ["", "\n", "RLIMIT_", "RLIMIT_A", "RLIMIT_NOFILE\n", "RLIMIT_NOFILE\n\n", "RLIMIT_a", "c", "c\n",
           "cc", "1KB", "10MB\n", "0KB", "1B", "MB:", "MB:x\n", "MB:x\ny", "0-3, 5", "0-3\n", "x", "\n\n"]


@pytest.mark.parametrize("pattern", sorted(gen._BY_HAND))
def test_samples(pattern):
    for s in SAMPLES:
        assert bool(gen.REGEX_PATTERNS[pattern].search(s)) == bool(re.search(pattern, s)), (pattern, s)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=12))
def test_random(s):
    for pattern in gen._BY_HAND:
        assert bool(gen.REGEX_PATTERNS[pattern].search(s)) == bool(re.search(pattern, s)), (pattern, s)


def test_every_pattern_of_the_schema_is_written_out():
    used = set(re.findall(r"REGEX_PATTERNS\[('(?:[^'\\]|\\.)*')\]", open(gen.__file__).read()))
    assert {eval(p) for p in used} <= set(gen._BY_HAND)  # noqa: S307 - our own literals
