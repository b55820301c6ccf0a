"""Validation of config.json against the OCI runtime-spec v1.3.0 JSON schema (``spec/``).

``validate_config(doc)`` returns None for a valid document and raises ``ConfigError`` with one line
naming the JSON path and the broken rule otherwise::

    config.json: process.args: [] should be non-empty
    config.json: mounts[1]: 'destination' is a required property
    config.json: 'ociVersion' is a required property            (the root itself)

Two validators, one verdict:

* the fast one, ``ociruntime._validator_gen`` (generated ahead of time by
  ``tools/gen_validator.py`` with fastjsonschema from the same schema, no imports), runs on every
  call;
* only when it rejects the document, jsonschema (the reference, much slower to import) validates it
  again against the schema files themselves and its ``best_match`` error becomes the message.  If
  jsonschema finds nothing wrong, the document is accepted: jsonschema has the last word.

Paths: object keys joined with dots, list indices in brackets (``linux.namespaces[0].type``); a
key that is not a plain name (``net.ipv4.ip_forward`` under ``linux.sysctl``) is written as a JSON
string in brackets: ``linux.sysctl["net.ipv4.ip_forward"]``.
"""
import posix as os  # os's C half (ociruntime/__init__.py says why)

from ociruntime import abspath, dirname, isfile, join
from ociruntime.errors import ConfigError

ROOT_SCHEMA = "config-schema.json"

_fast = None        # the generated validate(), once loaded
_reference = None   # the jsonschema validator, once built


def validate_config(doc):
    """Raise ``ConfigError`` unless ``doc`` (parsed config.json) matches the runtime-spec schema."""
    fast = _fast or _load_fast()
    try:
        fast(doc)
        return
    except Exception:  # the generated code's JsonSchemaValueException, or anything unforeseen
        pass
    message = explain(doc)
    if message is not None:
        raise ConfigError(message)


def explain(doc):
    """The ``config.json: <path>: <message>`` line jsonschema gives for ``doc``, None if valid."""
    from jsonschema.exceptions import best_match

    error = best_match(reference_validator().iter_errors(doc))
    if error is None:
        return None
    path = format_path(error.absolute_path)
    if path:
        return f"config.json: {path}: {_one_line(error.message)}"
    return f"config.json: {_one_line(error.message)}"


def format_path(path):
    """``["linux", "namespaces", 0, "type"]`` -> ``linux.namespaces[0].type``."""
    out = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _plain_key(part):
            out.append(f".{part}" if out else part)
        else:
            import json
            out.append(f"[{json.dumps(part)}]")
    return "".join(out)


def _plain_key(key):
    return bool(key) and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)


def _one_line(text):
    return " ".join(text.splitlines()) if "\n" in text or "\r" in text else text


def spec_dir():
    """Where the schema files are: ``ociruntime/spec/`` where the package is installed, ``spec/``
    beside the package in a checkout."""
    import ociruntime
    for where in ociruntime.__path__:
        for candidate in (join(where, "spec"), join(dirname(abspath(where)), "spec")):
            if isfile(join(candidate, ROOT_SCHEMA)):
                return candidate
    raise ConfigError(f"cannot validate config.json: the schema ({ROOT_SCHEMA}) is not installed")


def reference_validator():
    """The jsonschema validator for config-schema.json, all ``$ref``s served from spec/ (no network).

    The draft comes from the root schema's ``$schema`` (draft-04 upstream); format assertions stay
    off, as the spec does not rely on them.
    """
    global _reference
    if _reference is None:
        import json

        import jsonschema.validators
        import referencing
        import referencing.jsonschema

        directory = spec_dir()
        docs = {}
        for name in sorted(os.listdir(directory)):
            if name.endswith(".json"):
                with open(join(directory, name), encoding="utf-8") as f:
                    docs[name] = json.load(f)
        root = docs[ROOT_SCHEMA]
        specification = referencing.jsonschema.specification_with(root["$schema"])
        # Files are registered under their bare names: the root has no id, so its relative refs
        # ("defs.json#/definitions/uint32") resolve to exactly those names.
        registry = referencing.Registry().with_resources(
            (name, specification.create_resource(contents)) for name, contents in docs.items())
        cls = jsonschema.validators.validator_for(root)
        _reference = cls(root, registry=registry)
    return _reference


def _load_fast():
    """Import the generated validator (a large module, loaded only when a config is validated)."""
    global _fast
    from ociruntime import _validator_gen
    _fast = _validator_gen.validate
    return _fast
