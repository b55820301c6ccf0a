"""JSON in and out, on the interpreter's C accelerator ``_json``.

``import json`` is slow to import (json.decoder imports ``re``, which imports ``enum``); ``_json``
is the same code without them.  ``loads`` and ``dumps`` give exactly what ``json.loads``,
``json.dumps(obj, separators=(",", ":"))`` and ``json.dumps(obj, indent=N)`` give (tests/unit/
test_jsonio.py compares them); anything unusual (a document ``_json`` rejects, non-UTF-8 input,
non-string keys) is handed to the ``json`` package itself, so errors carry its messages.
"""
import _json

_WS = " \t\n\r"


class _DecoderContext:
    """The attributes ``_json.make_scanner`` reads from a ``json.JSONDecoder``."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__
    memo = None


_scan = _json.make_scanner(_DecoderContext())


def _fail():
    raise TypeError("not JSON serializable")


# json.JSONEncoder(separators=(",", ":")) as json.dumps builds it (C encoder, one shot)
_compact = _json.make_encoder(None, lambda o: _fail(), _json.encode_basestring_ascii, None, ":", ",",
                              False, False, True)


def loads(data):
    try:
        s = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        if s.startswith("\ufeff"):
            raise ValueError
        idx = len(s) - len(s.lstrip(_WS))
        obj, end = _scan(s, idx)
        if s[end:].strip(_WS):
            raise ValueError
        return obj
    except (ValueError, StopIteration, TypeError, AttributeError, SystemError):
        # SystemError: _json reports a syntax error through json.decoder.JSONDecodeError, which it
        # takes from sys.modules only (unset there until json is imported)
        import json  # the reference: its result, or its error message
        return json.loads(data)


def dumps(obj, indent=None):
    try:
        if indent is None:
            return "".join(_compact(obj, 0))
        out = []
        _pretty(obj, " " * indent if isinstance(indent, int) else indent, 0, out)
        return "".join(out)
    except (TypeError, ValueError, RecursionError):
        import json
        if indent is None:
            return json.dumps(obj, separators=(",", ":"))
        return json.dumps(obj, indent=indent)


def _pretty(o, ind, level, out):
    """json.dumps(indent=...) layout: one member per line, ``": "`` after keys, ``[]``/``{}`` when empty."""
    if isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        pad = "\n" + ind * (level + 1)
        sep = "{" + pad
        for k, v in o.items():
            if not isinstance(k, str):
                raise TypeError("key")
            out.append(sep)
            out.append(_json.encode_basestring_ascii(k))
            out.append(": ")
            _pretty(v, ind, level + 1, out)
            sep = "," + pad
        out.append("\n" + ind * level + "}")
    elif isinstance(o, (list, tuple)):
        if not o:
            out.append("[]")
            return
        pad = "\n" + ind * (level + 1)
        sep = "[" + pad
        for v in o:
            out.append(sep)
            _pretty(v, ind, level + 1, out)
            sep = "," + pad
        out.append("\n" + ind * level + "]")
    else:
        out.extend(_compact(o, 0))
