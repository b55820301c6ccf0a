"""JSON in and out, in one place so the implementation can be swapped for a faster one."""
import json


def loads(data):
    return json.loads(data)


def dumps(obj, indent=None):
    if indent is None:
        return json.dumps(obj, separators=(",", ":"))
    return json.dumps(obj, indent=indent)
