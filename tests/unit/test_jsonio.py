"""ociruntime.jsonio (on the C accelerator _json) gives exactly what the json package gives."""
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ociruntime import jsonio

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
docs = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(docs)
def test_dumps_and_loads_match_json(doc):
    compact = json.dumps(doc, separators=(",", ":"))
    assert jsonio.dumps(doc) == compact
    assert jsonio.dumps(doc, indent=2) == json.dumps(doc, indent=2)
    assert jsonio.dumps(doc, indent="\t") == json.dumps(doc, indent="\t")
    pretty = json.dumps(doc, indent=1)
    for text in (compact, pretty, " \n" + pretty + "\r\n\t", compact.encode()):
        assert repr(jsonio.loads(text)) == repr(json.loads(text))


@pytest.mark.parametrize("bad", ["", " ", "{", "[1,]", '{"a":1} x', "nul", "\ufeff{}", b"\xff{}", '"\x01"'])
def test_errors_are_json_errors(bad):
    with pytest.raises(ValueError) as ours:
        jsonio.loads(bad)
    with pytest.raises(ValueError) as theirs:
        json.loads(bad)
    assert str(ours.value) == str(theirs.value)


def test_other_inputs_fall_back_to_json():
    assert jsonio.loads("\ufeff{}".encode("utf-8")) == {}
    assert jsonio.loads('{"a": [1]}'.encode("utf-16")) == {"a": [1]}
    assert jsonio.dumps({1: 2}) == '{"1":2}'
    assert jsonio.dumps({1: [2]}, indent=2) == json.dumps({1: [2]}, indent=2)
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsonio.dumps({"a": object()})


def test_errors_without_json_imported():
    """In a fresh interpreter (json not imported): the C scanner cannot raise its own error."""
    code = ("import sys; from ociruntime import jsonio\n"
            "assert 'json' not in sys.modules\n"
            "try:\n    jsonio.loads('{\"a\": [')\nexcept ValueError as e:\n    print(type(e).__name__, e)\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-I", "-S", "-c", "import sys; sys.path.insert(0, %r)\n" % root + code],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("JSONDecodeError Expecting value")
