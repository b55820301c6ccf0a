#!/usr/bin/env python3
"""Generate ``ociruntime/_validator_gen.py`` (and its parts) from the JSON schema in ``spec/``.

    python3 tools/gen_validator.py            # (re)write ociruntime/_validator_gen.py and parts
    python3 tools/gen_validator.py --check    # exit 1 if a checked-in file is stale

Needs ``fastjsonschema`` (``pip install fastjsonschema``) at generation time only: the generated
module imports nothing from it (nor ``re``/``decimal`` up front), so that validating a config on
every ``create`` stays cheap.

What it does:

1. Resolves ``spec/config-schema.json`` and every file it ``$ref``s into ONE self-contained schema
   with no ``$ref`` left: each ref is replaced by its target (``defs-linux.json#/definitions/
   Device``, ``config-linux.json#/linux``, ...).  Inlined, the generated code is a single function
   that builds no path strings on the success path (fastjsonschema's per-``$ref`` functions format
   an error-path argument on every call).  No network, no ref resolution at run time.
2. Runs fastjsonschema's draft-04 code generator on it (no defaults, no formats, short
   exceptions).
3. Writes a module with the generated code plus three small local stand-ins:

   * ``JsonSchemaValueException`` (and ``JsonSchemaValuesException``) instead of importing them
     from fastjsonschema;
   * ``REGEX_PATTERNS``: a dict that compiles a pattern the first time it is used, with Python's
     own ``re`` semantics.  fastjsonschema rewrites ``$`` to ``\\Z``; jsonschema (our reference)
     uses ``re.search`` with the pattern as written, so ``"RLIMIT_CORE\\n"`` matches
     ``^RLIMIT_[A-Z]+$`` there.  We keep jsonschema's behaviour so the two never disagree;
   * ``Decimal``: a placeholder class.  The generated numeric checks test
     ``isinstance(x, (int, float, Decimal))``; documents from ``json.loads`` never hold a
     ``decimal.Decimal``, and importing ``decimal`` is not worth it for none.

4. Moves the checks of the members in ``SPLIT`` (sections a ``runc spec`` config does not have:
   hooks, seccomp, most of linux.resources, the other platforms, ...) out of the one function into
   modules of their own, ``ociruntime/_validator_parts/<path>.py``, imported the first time a
   config has that member.  The whole function is ~340 kB of bytecode: reading and unmarshalling
   it was a noticeable part of every create and run; the part a usual config needs is a sixth
   of it.  Each
   moved block is the body of ``if "KEY" in <parent>_keys:`` after the generator's own two lines
   (the key taken off the parent's set, its value bound to ``<parent>__KEY``); it becomes
   ``validate(<parent>__KEY, name_prefix)`` of its module, unchanged.  Only members reached
   through objects are moved (no enclosing loop whose index a message would name), and the
   generator checks that a moved body uses no name of the function it leaves.
"""
import argparse
import hashlib
import json
import os
import sys
from urllib.parse import unquote

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC_DIR = os.path.join(ROOT, "spec")
OUT = os.path.join(ROOT, "ociruntime", "_validator_gen.py")
PARTS = "_validator_parts"  # ociruntime/_validator_parts/: the moved members' modules
ROOT_SCHEMA = "config-schema.json"

# members whose checks live in a module of their own (see 4. above), by JSON path
SPLIT = (
    "hooks", "solaris", "windows", "vm", "zos", "freebsd",
    "process.consoleSize", "process.ioPriority", "process.scheduler", "process.execCPUAffinity",
    "linux.devices", "linux.netDevices", "linux.uidMappings", "linux.gidMappings", "linux.seccomp",
    "linux.intelRdt", "linux.memoryPolicy", "linux.personality", "linux.timeOffsets",
    "linux.resources.blockIO", "linux.resources.cpu", "linux.resources.hugepageLimits",
    "linux.resources.memory", "linux.resources.network", "linux.resources.rdma",
)
# what a moved body may use of the core module besides builtins
SHARED = ("JsonSchemaValueException", "JsonSchemaValuesException", "REGEX_PATTERNS", "NoneType", "Decimal")


def load_spec(spec_dir=SPEC_DIR):
    """{file name: parsed JSON} for every spec/*.json."""
    docs = {}
    for name in sorted(os.listdir(spec_dir)):
        if name.endswith(".json"):
            with open(os.path.join(spec_dir, name), encoding="utf-8") as f:
                docs[name] = json.load(f)
    return docs


def spec_digest(spec_dir=SPEC_DIR):
    """sha256 over the names and bytes of spec/*.json: recorded in the generated module."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(spec_dir)):
        if name.endswith(".json"):
            h.update(name.encode() + b"\0")
            with open(os.path.join(spec_dir, name), "rb") as f:
                h.update(f.read())
            h.update(b"\0")
    return h.hexdigest()


def _resolve_pointer(doc, pointer):
    node = doc
    if pointer in ("", "/"):
        return node
    for token in pointer.lstrip("/").split("/"):
        token = unquote(token).replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def inline(docs, root=ROOT_SCHEMA):
    """One self-contained draft-04 schema equivalent to ``docs[root]`` and the files it refs.

    Every ``{"$ref": ...}`` node is replaced by (a rewritten copy of) its target.  In draft-04 a
    ``$ref`` overrides its sibling keywords (``"personality": {"type": "object", "$ref": ...}``,
    ``"Major": {"description": ..., "$ref": ...}``), so dropping the siblings is exact.  The schema
    has no recursive references; a cycle would be reported rather than loop.
    """
    def resolve(ref, current_file, stack):
        file_part, _, fragment = ref.partition("#")
        file_name = file_part or current_file
        if file_name not in docs:
            raise SystemExit(f"{current_file}: $ref {ref!r}: no spec/{file_name}")
        key = (file_name, fragment)
        if key in stack:
            raise SystemExit(f"recursive $ref {ref!r} in {current_file}: cannot inline")
        return rewrite(_resolve_pointer(docs[file_name], fragment), file_name, stack + (key,))

    def rewrite(node, current_file, stack):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                return resolve(ref, current_file, stack)
            return {k: rewrite(v, current_file, stack) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v, current_file, stack) for v in node]
        return node

    return rewrite(docs[root], root, ())


HEADER = '''\
# GENERATED by tools/gen_validator.py from spec/*.json (OCI runtime-spec v1.3.0 schema).
# DO NOT EDIT: change spec/ or the generator, then run  python3 tools/gen_validator.py
# fastjsonschema {fjs_version} (draft-04 code generator); no run-time dependency on it.
# flake8: noqa
# pylint: skip-file
"""Fast pass/fail validator for config.json; ``validate(doc)`` raises JsonSchemaValueException.

Only the verdict matters: ociruntime.validate asks jsonschema for the message when this fails.
"""

SPEC_SHA256 = {digest!r}


class JsonSchemaValueException(ValueError):
    """The document does not match the schema (short message, no details)."""

    def __init__(self, message, value=None, name=None, definition=None, rule=None):
        super().__init__(message)
        self.message = message
        self.value, self.name, self.definition, self.rule = value, name, definition, rule


class JsonSchemaValuesException(ValueError):
    """Several errors (only raised by generators built without fast_fail)."""

    def __init__(self, errors):
        self.errors = errors
        self.message = "; ".join(e.message for e in errors)
        super().__init__(self.message)


class Decimal:
    """Placeholder: json.loads never yields decimal.Decimal (no need to import decimal)."""


def _body(s):
    """What ``^...$`` must match: ``$`` matches at the end or before one final newline."""
    return s[:-1] if s.endswith("\\n") else s


class _Search:
    def __init__(self, search):
        self.search = search


# re.search() of the schema's patterns, written out: importing ``re`` (it imports enum) would
# cost more than the rest of create's validation.  tests/unit/test_validator_patterns.py checks
# them against re.
_BY_HAND = {{
    ".{{1,}}": lambda s: s.replace("\\n", "") != "",
    "^MB:[^\\\\n]*$": lambda s: s.startswith("MB:") and "\\n" not in _body(s)[3:],
    "^RLIMIT_[A-Z]+$": lambda s: (b := _body(s)).startswith("RLIMIT_") and len(b) > 7
    and all("A" <= c <= "Z" for c in b[7:]),
    "^[0-9, -]*$": lambda s: all(c in "0123456789, -" for c in _body(s)),
    "^[1-9][0-9]*[KMG]B$": lambda s: len(b := _body(s)) >= 3 and b[0] in "123456789" and b[-2] in "KMG"
    and b[-1] == "B" and all(c in "0123456789" for c in b[1:-2]),
    "^[cbup]$": lambda s: _body(s) in ("c", "b", "u", "p"),
}}


class _Patterns(dict):
    """Each pattern on first use: written out by hand above, or compiled with plain ``re``
    semantics (as jsonschema does)."""

    def __missing__(self, pattern):
        if pattern in _BY_HAND:
            compiled = self[pattern] = _Search(_BY_HAND[pattern])
            return compiled
        import re
        compiled = self[pattern] = re.compile(pattern)
        return compiled


REGEX_PATTERNS = _Patterns()
# Patterns used by the schema: {patterns!r}

'''


PART_HEADER = '''\
# GENERATED by tools/gen_validator.py from spec/*.json (OCI runtime-spec v1.3.0 schema).
# DO NOT EDIT: change spec/ or the generator, then run  python3 tools/gen_validator.py
# flake8: noqa
# pylint: skip-file
"""The checks of ``{path}``, moved out of ociruntime/_validator_gen.py (imported when a config has it)."""
{imports}

def validate({var}, name_prefix):
'''


def _indent(line):
    return len(line) - len(line.lstrip(" "))


def split(code, paths=SPLIT):
    """(core code, {module name: its text}): each member in ``paths`` moved out (see 4. above)."""
    import ast
    import builtins

    lines = code.split("\n")
    parts = {}
    for path in paths:
        *parents, key = path.split(".")
        var = "data" + "".join("__" + p for p in parents)
        head = f'if "{key}" in {var}_keys:'
        found = [i for i, line in enumerate(lines) if line.strip() == head]
        if len(found) != 1:
            raise SystemExit(f"split {path}: {len(found)} lines {head!r} in the generated code")
        i = found[0]
        target = f"{var}__{key}"
        if lines[i + 1].strip() != f'{var}_keys.remove("{key}")' or \
                lines[i + 2].strip() != f'{target} = {var}["{key}"]':
            raise SystemExit(f"split {path}: unexpected lines after {head!r}")
        inner = _indent(lines[i]) + 4
        end = i + 3
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) >= inner):
            end += 1
        body = [line[inner - 4:] if line.strip() else "" for line in lines[i + 3:end]]
        module = path.replace(".", "_")
        func = ast.parse("def validate(%s, name_prefix):\n%s" % (target, "\n".join(body))).body[0]
        stored = {a.arg for a in func.args.args} | {
            n.id for n in ast.walk(func) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
        loaded = {n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        free = loaded - stored - set(dir(builtins))
        if free - set(SHARED):
            raise SystemExit(f"split {path}: the moved body uses {sorted(free - set(SHARED))}")
        imports = ("from ociruntime._validator_gen import %s\n" % ", ".join(sorted(free))) if free else ""
        parts[module] = PART_HEADER.format(path=path, imports=imports, var=target) + \
            "\n".join(body).rstrip() + "\n"
        pad = " " * inner
        lines[i + 3:end] = [pad + f"from ociruntime.{PARTS}.{module} import validate as _part",
                            pad + f"_part({target}, name_prefix)"]
    return "\n".join(lines), parts


def generate(spec_dir=SPEC_DIR):
    """{path under ociruntime/: text} of the generated modules."""
    import fastjsonschema
    from fastjsonschema.draft04 import CodeGeneratorDraft04

    docs = load_spec(spec_dir)
    schema = inline(docs)
    gen = CodeGeneratorDraft04(schema, formats={}, use_default=False, use_formats=False,
                               detailed_exceptions=False)
    code = gen.func_code
    patterns = sorted(gen._compile_regexps)  # noqa: SLF001 - the generator's own pattern list
    if "validate(" not in code:
        raise SystemExit("generated code has no validate() function")
    for needle in ("import fastjsonschema", "from fastjsonschema", "$ref"):
        if needle in code:
            raise SystemExit(f"generated code unexpectedly contains {needle!r}")
    out = HEADER.format(fjs_version=fastjsonschema.VERSION, digest=spec_digest(spec_dir),
                        patterns=patterns)
    core, parts = split(code)
    files = {"_validator_gen.py": out + core.rstrip() + "\n",
             PARTS + "/__init__.py": PARTS_INIT}
    files.update((f"{PARTS}/{name}.py", text) for name, text in parts.items())
    _smoke_test(files)
    return files


PARTS_INIT = '''\
# GENERATED by tools/gen_validator.py (see 4. there): one module per member of config.json whose
# checks are loaded only for a config that has it.
'''

SMOKE = '''\
import sys
from ociruntime._validator_gen import JsonSchemaValueException, validate
validate({"ociVersion": "1.3.0", "root": {"path": "rootfs"}, "annotations": {"a": "b"},
          "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0},
                      "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1}]},
          "linux": {"namespaces": [{"type": "pid"}], "devices": [{"type": "c", "path": "/x"}],
                    "resources": {"memory": {"limit": -1}}}})
assert "ociruntime._validator_parts.linux_devices" in sys.modules
for bad in ({}, {"ociVersion": "1.3.0", "process": {"cwd": "/", "args": []}},
            {"ociVersion": "1.3.0", "linux": {"seccomp": {"defaultAction": 1}}}):
    try:
        validate(bad)
    except JsonSchemaValueException:
        continue
    raise SystemExit("generated validator accepts %r" % (bad,))
'''


def _smoke_test(files):
    """The modules must run on their own (in a fresh interpreter, from a scratch copy of them):
    accept a small valid config, reject invalid ones, one of them in a moved part."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "ociruntime", PARTS))
        open(os.path.join(tmp, "ociruntime", "__init__.py"), "w").close()
        for rel, text in files.items():
            with open(os.path.join(tmp, "ociruntime", rel), "w", encoding="utf-8") as f:
                f.write(text)
        r = subprocess.run([sys.executable, "-I", "-S", "-c", "import sys; sys.path.insert(0, %r)\n%s"
                            % (tmp, SMOKE)], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise SystemExit("generated validator fails its smoke test: " + r.stderr.strip()[-2000:])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the checked-in file is stale")
    ap.add_argument("--output", default=os.path.dirname(OUT), help="the package directory")
    args = ap.parse_args(argv)
    files = generate()
    stale = stale_files(files, args.output)
    if args.check:
        for rel in stale:
            print(f"{os.path.join(args.output, rel)} is stale: run python3 tools/gen_validator.py",
                  file=sys.stderr)
        return 1 if stale else 0
    os.makedirs(os.path.join(args.output, PARTS), exist_ok=True)
    for rel in stale:
        path = os.path.join(args.output, rel)
        if rel in files:
            with open(path, "w", encoding="utf-8") as f:
                f.write(files[rel])
            print(f"wrote {path} ({len(files[rel])} bytes)")
        else:
            os.unlink(path)
            print(f"removed {path}")
    return 0


def stale_files(files, package_dir):
    """Paths (under ``package_dir``) that differ from ``files`` or are left over from an earlier
    split."""
    stale = []
    for rel, text in files.items():
        try:
            with open(os.path.join(package_dir, rel), encoding="utf-8") as f:
                if f.read() == text:
                    continue
        except FileNotFoundError:
            pass
        stale.append(rel)
    parts_dir = os.path.join(package_dir, PARTS)
    if os.path.isdir(parts_dir):
        stale += sorted(f"{PARTS}/{n}" for n in os.listdir(parts_dir)
                        if n.endswith(".py") and f"{PARTS}/{n}" not in files)
    return stale


if __name__ == "__main__":
    sys.exit(main())
