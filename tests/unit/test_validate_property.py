"""Property test: the generated validator accepts and rejects exactly what jsonschema does.

Valid configs are drawn from strategies built from the schema itself (spec/, every ``$ref``
inlined by tools/gen_validator.py's ``inline``): process, root, mounts, hostname, hooks,
annotations, linux.* (namespaces, id mappings, resources, devices, seccomp, ...) and the other
platforms.  Each is then mutated at a random place the schema constrains: a required key dropped,
a value of the wrong type, an out-of-enum string, a number under the minimum / over the maximum,
an empty array where one item is required, a string breaking a pattern, or an arbitrary JSON value.

The reference is jsonschema's Draft4Validator over the original spec/ files (ociruntime.validate).
Runs in well under 20 s; no root, no conftest fixtures.
"""
import copy
import importlib.util
import json
import os
import re

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ociruntime import validate
from ociruntime._validator_gen import validate as fast_validate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load_generator():
    spec = importlib.util.spec_from_file_location(
        "gen_validator", os.path.join(REPO, "tools", "gen_validator.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_gen = _load_generator()
SCHEMA = _gen.inline(_gen.load_spec(os.path.join(REPO, "spec")))
REFERENCE = validate.reference_validator()

SETTINGS = settings(max_examples=150, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])

# ---------------------------------------------------------------------------------------------
# strategies from the schema

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 65, 2 ** 65),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6)
short_text = st.text(max_size=8)
key_text = st.text(min_size=1, max_size=8)


def merged(schema):
    """Fold allOf branches into the schema (all ours are object/array refinements)."""
    if "allOf" not in schema:
        return schema
    out = {k: v for k, v in schema.items() if k != "allOf"}
    for branch in schema["allOf"]:
        branch = merged(branch)
        for key, value in branch.items():
            if key == "properties":
                out["properties"] = {**out.get("properties", {}), **value}
            elif key == "required":
                out["required"] = sorted(set(out.get("required", [])) | set(value))
            else:
                out.setdefault(key, value)
    return out


def strategy(schema):
    schema = merged(schema)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([strategy(s) for s in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        required = schema.get("required", [])
        base = st.fixed_dictionaries(
            {k: strategy(props.get(k, {})) for k in required},
            optional={k: strategy(v) for k, v in props.items() if k not in required})
        extras = []
        for pattern, sub in schema.get("patternProperties", {}).items():
            keys = key_text.filter(lambda k, p=pattern: re.search(p, k) is not None)
            extras.append(st.dictionaries(keys, strategy(sub), max_size=3))
        if isinstance(schema.get("additionalProperties"), dict):
            extras.append(st.dictionaries(key_text, strategy(schema["additionalProperties"]),
                                          max_size=3))
        if not props and not extras:
            extras.append(st.dictionaries(short_text, json_value, max_size=2))
        for extra in extras:
            base = st.tuples(base, extra).map(lambda pair: {**pair[1], **pair[0]})
        return base
    if kind == "array":
        return st.lists(strategy(schema.get("items", {})), min_size=schema.get("minItems", 0),
                        max_size=max(2, schema.get("minItems", 0)))
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"])
        return short_text
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "boolean":
        return st.booleans()
    return json_value


valid_configs = strategy(SCHEMA)

# the sections the runtime actually consumes, drawn on their own so they get more attention
_props = SCHEMA["properties"]
_linux = _props["linux"]["properties"]
linux_configs = st.fixed_dictionaries({
    "ociVersion": st.just("1.3.0"),
    "process": strategy(_props["process"]),
    "root": strategy(_props["root"]),
}, optional={
    "mounts": strategy(_props["mounts"]),
    "hostname": strategy(_props["hostname"]),
    "hooks": strategy(_props["hooks"]),
    "annotations": strategy(_props["annotations"]),
    "linux": st.fixed_dictionaries({}, optional={
        k: strategy(_linux[k]) for k in ("namespaces", "uidMappings", "gidMappings",
                                         "resources", "devices", "seccomp", "sysctl",
                                         "maskedPaths", "readonlyPaths", "rootfsPropagation",
                                         "cgroupsPath")}),
})
any_config = st.one_of(valid_configs, linux_configs)

# ---------------------------------------------------------------------------------------------
# mutations


def sites(doc, schema, path=()):
    """(path, value, schema) for every place in ``doc`` the schema says something about."""
    schema = merged(schema)
    if "anyOf" in schema and len(schema["anyOf"]) == 1:
        schema = merged(schema["anyOf"][0])
    yield path, doc, schema
    if isinstance(doc, dict):
        props = schema.get("properties", {})
        for key, value in doc.items():
            if key in props:
                yield from sites(value, props[key], path + (key,))
                continue
            for pattern, sub in schema.get("patternProperties", {}).items():
                if re.search(pattern, key):
                    yield from sites(value, sub, path + (key,))
            if isinstance(schema.get("additionalProperties"), dict):
                yield from sites(value, schema["additionalProperties"], path + (key,))
    elif isinstance(doc, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(doc):
            yield from sites(value, schema["items"], path + (i,))


WRONG_TYPE = {
    "object": [[], "x", 1, None],
    "array": [{}, "x", 0, None],
    "string": [0, 1.5, True, None, [], {}],
    "integer": ["1", 1.5, 1.0, True, None, []],
    "boolean": ["true", 0, 1, None],
}

# mutations that must make the document invalid (the others may or may not)
BREAKING = {"drop_required", "wrong_type", "bad_enum", "below_minimum", "above_maximum",
            "empty_array", "bad_pattern"}


KINDS = ["drop_required", "wrong_type", "bad_enum", "below_minimum", "above_maximum",
         "empty_array", "bad_pattern", "extra_key", "append_random", "random"]


def mutations(value, schema):
    kinds = ["random"]
    if isinstance(value, dict):
        kinds.append("extra_key")
        if any(k in value for k in schema.get("required", [])):
            kinds.append("drop_required")
    if isinstance(value, list):
        kinds.append("append_random")
    if schema.get("type") in WRONG_TYPE:
        kinds.append("wrong_type")
    if "enum" in schema:
        kinds.append("bad_enum")
    if "minimum" in schema:
        kinds.append("below_minimum")
    if "maximum" in schema:
        kinds.append("above_maximum")
    if schema.get("minItems", 0) > 0:
        kinds.append("empty_array")
    if "pattern" in schema:
        kinds.append("bad_pattern")
    return kinds


def set_at(doc, path, value):
    if not path:
        return value
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


@st.composite
def mutated_configs(draw):
    doc = draw(any_config)
    everywhere = list(sites(doc, SCHEMA))
    # pick the kind first, then a place it applies to, so rare kinds get their share
    kind = draw(st.sampled_from(KINDS))
    places = [site for site in everywhere if kind in mutations(site[1], site[2])]
    if not places:
        kind, places = "random", everywhere
    path, value, schema = draw(st.sampled_from(places))
    if kind == "random":
        new = draw(json_value)
    elif kind == "extra_key":
        new = dict(value)
        new[draw(short_text)] = draw(json_value)
    elif kind == "append_random":
        new = list(value) + [draw(json_value)]
    elif kind == "drop_required":
        new = dict(value)
        del new[draw(st.sampled_from([k for k in schema["required"] if k in value]))]
    elif kind == "wrong_type":
        new = draw(st.sampled_from(WRONG_TYPE[schema["type"]]))
    elif kind == "bad_enum":
        new = draw(st.sampled_from(["bogus", "", "PID", schema["enum"][0] + " "]))
        assert new not in schema["enum"]
    elif kind == "below_minimum":
        new = schema["minimum"] - draw(st.integers(1, 2 ** 64))
    elif kind == "above_maximum":
        new = schema["maximum"] + draw(st.integers(1, 2 ** 64))
    elif kind == "empty_array":
        new = []
    elif kind == "bad_pattern":
        pattern = schema["pattern"]
        new = draw(st.sampled_from(["", "x", "rlimit_nofile", "64kB", "z", "\n", "RLIMIT_",
                                    "0-3;", "MB:\n1"]).filter(
            lambda s: re.search(pattern, s) is None))
    else:  # pragma: no cover
        raise AssertionError(kind)
    return set_at(doc, path, new), kind, path


# ---------------------------------------------------------------------------------------------
# properties


def fast_accepts(doc):
    try:
        fast_validate(copy.deepcopy(doc))
    except Exception:
        return False
    return True


@SETTINGS
@given(any_config)
def test_generated_configs_are_valid_for_both(doc):
    assert REFERENCE.is_valid(doc), validate.explain(doc)
    assert fast_accepts(doc)
    validate.validate_config(doc)


@SETTINGS
@given(mutated_configs())
def test_mutated_configs_judged_the_same(case):
    doc, kind, path = case
    reference_ok = REFERENCE.is_valid(doc)
    event(f"{kind}: {'valid' if reference_ok else 'invalid'}")
    assert fast_accepts(doc) == reference_ok, (kind, path)
    if kind in BREAKING:
        assert not reference_ok, (kind, path, "mutation should have broken the document")
    if not reference_ok:
        message = validate.explain(doc)
        assert message.startswith("config.json: ") and "\n" not in message
        with pytest.raises(validate.ConfigError) as info:
            validate.validate_config(doc)
        assert str(info.value) == message


@settings(max_examples=100, deadline=None)
@given(json_value)
def test_arbitrary_json_judged_the_same(doc):
    assert fast_accepts(doc) == REFERENCE.is_valid(doc)


# ---------------------------------------------------------------------------------------------
# exhaustive: every enum value and every numeric bound of the whole schema

EXAMPLE_FOR_PATTERN = {"^RLIMIT_[A-Z]+$": "RLIMIT_NOFILE", "^[0-9, -]*$": "0-3",
                       "^[1-9][0-9]*[KMG]B$": "2MB", "^MB:[^\\n]*$": "MB:0=20", "^[cbup]$": "c"}


def maximal(schema):
    """A valid document with every property present (lists of one item)."""
    schema = merged(schema)
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return maximal(schema["anyOf"][0])
    kind = schema.get("type")
    if kind == "object":
        out = {k: maximal(v) for k, v in schema.get("properties", {}).items()}
        for sub in schema.get("patternProperties", {}).values():
            out.setdefault("key.1", maximal(sub))
        if isinstance(schema.get("additionalProperties"), dict):
            out.setdefault("extra0", maximal(schema["additionalProperties"]))
        return out
    if kind == "array":
        return [maximal(schema.get("items", {}))] * max(1, schema.get("minItems", 0))
    if kind == "string":
        return EXAMPLE_FOR_PATTERN.get(schema.get("pattern"), "s")
    if kind == "integer":
        return schema.get("minimum", 0)
    if kind == "boolean":
        return True
    return {}


MAXIMAL = maximal(SCHEMA)


def only_path(doc, schema, path):
    """``doc`` cut down to ``path`` plus the required keys along it (small: quick to validate)."""
    schema = merged(schema)
    if "anyOf" in schema and len(schema["anyOf"]) == 1:
        schema = merged(schema["anyOf"][0])
    if not path:
        return copy.deepcopy(doc)
    head, rest = path[0], path[1:]
    if isinstance(doc, list):
        return [only_path(doc[head], schema.get("items", {}), rest)]
    keep = {k: copy.deepcopy(doc[k]) for k in schema.get("required", []) if k in doc}
    sub = schema.get("properties", {}).get(head)
    if sub is None:
        sub = schema.get("additionalProperties") if isinstance(
            schema.get("additionalProperties"), dict) else next(
            iter(schema.get("patternProperties", {}).values()), {})
    keep[head] = only_path(doc[head], sub, rest)
    return keep


def _point_cases():
    for path, _, schema in sites(MAXIMAL, SCHEMA):
        for value in schema.get("enum", []):
            yield path, value, True
        if "enum" in schema:
            yield path, "bogus", False
        if "minimum" in schema:
            yield path, schema["minimum"], True
            yield path, schema["minimum"] - 1, False
        if "maximum" in schema:
            yield path, schema["maximum"], True
            yield path, schema["maximum"] + 1, False


POINT_CASES = list(_point_cases())


def test_maximal_document_is_valid_for_both():
    assert REFERENCE.is_valid(MAXIMAL), validate.explain(MAXIMAL)
    assert fast_accepts(MAXIMAL)


def test_every_enum_value_and_bound_judged_the_same():
    assert len(POINT_CASES) > 300
    for path, value, expected in POINT_CASES:
        doc = set_at(only_path(MAXIMAL, SCHEMA, path), path, value)
        assert REFERENCE.is_valid(doc) is expected, (path, value)
        assert fast_accepts(doc) is expected, (path, value)


def _patterns(node, found):
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            found.add(node["pattern"])
        for v in node.values():
            _patterns(v, found)
    elif isinstance(node, list):
        for v in node:
            _patterns(v, found)
    return found


SCHEMA_PATTERNS = sorted(_patterns(SCHEMA, set()))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SCHEMA_PATTERNS),
       st.one_of(st.text(max_size=12), st.sampled_from(
           ["RLIMIT_NOFILE", "RLIMIT_NOFILE\n", "2MB\n", "c\n", "MB:1\n", "0-3\n", "\n",
            "MB:\n\n", "c\n\n"])))
def test_patterns_use_python_re_semantics(pattern, text):
    """jsonschema uses re.search as written: the generated patterns must too (no $ -> \\Z)."""
    from ociruntime._validator_gen import REGEX_PATTERNS
    assert bool(REGEX_PATTERNS[pattern].search(text)) == bool(re.search(pattern, text))


def test_schema_patterns_are_all_covered():
    assert SCHEMA_PATTERNS == sorted({"^RLIMIT_[A-Z]+$", "^[0-9, -]*$", "^[1-9][0-9]*[KMG]B$",
                                      "^MB:[^\\n]*$", "^[cbup]$"})


def test_inlined_schema_has_no_refs():
    assert "$ref" not in json.dumps(SCHEMA)
