"""The command-line parser (Go's flag package with urfave/cli v1's reordering), the help texts,
and the log's debug lines, without a container."""
import importlib
import os
import re

import pytest

from ociruntime import cli, log
from ociruntime.cli import FlagError, check_args, parse_flags, reorder
from ociruntime.cli import help as cli_help

DELETE = {"force": ("force", "bool"), "f": ("force", "bool")}
KILL = {"all": ("all", "bool"), "a": ("all", "bool")}
UPDATE = {"memory": ("memory", "str"), "pids-limit": ("pids_limit", "int"), "r": ("resources", "str"),
          "resources": ("resources", "str")}
EXEC = importlib.import_module("ociruntime.cli.exec").FLAGS


@pytest.mark.parametrize("argv,table,want", [
    (["ID", "--force"], DELETE, ["--force", "ID"]),
    (["ID", "-f"], DELETE, ["-f", "ID"]),
    (["ID", "KILL", "--all"], KILL, ["--all", "ID", "KILL"]),
    # the argument after a flag moves with it (it may be its value), even after a bool flag
    (["ID", "--all", "KILL"], KILL, ["--all", "KILL", "ID"]),
    (["ID", "--memory", "100m", "--pids-limit=5"], UPDATE, ["--memory", "100m", "--pids-limit=5", "ID"]),
    (["ID", "--memory"], UPDATE, ["--memory", "ID"]),
    # an unknown flag stays where it is, so does everything after "--"
    (["ID", "--nosuch"], DELETE, ["ID", "--nosuch"]),
    (["ID", "--", "--force"], DELETE, ["--", "ID", "--force"]),
    (["ID", "--help"], {}, ["--help", "ID"]),
])
def test_reorder(argv, table, want):
    assert reorder(argv, table) == want


def test_flags_after_the_id():
    assert parse_flags(["ID", "--force"], DELETE, True) == ({"force": True}, ["ID"])
    assert parse_flags(["ID", "KILL", "-a"], KILL, True) == ({"all": True}, ["ID", "KILL"])
    assert parse_flags(["ID", "--memory=1g", "-r", "-"], UPDATE, True) == (
        {"memory": "1g", "resources": "-"}, ["ID"])
    # without reordering (exec, ps) they are arguments
    assert parse_flags(["ID", "--force"], DELETE) == ({}, ["ID", "--force"])


def test_go_flag_forms():
    assert parse_flags(["-e", "A=1", "-e", "B=2", "ID", "sh", "-e"], EXEC) == (
        {"env": ["A=1", "B=2"]}, ["ID", "sh", "-e"])
    assert parse_flags(["--e=A=1", "--e", "B", "ID"], EXEC)[0]["env"] == ["A=1", "B"]
    assert parse_flags(["-env=A", "--env", "B", "ID"], EXEC)[0]["env"] == ["A", "B"]
    assert parse_flags(["-t=false", "--detach=T", "ID"], EXEC)[0] == {"tty": False, "detach": True}
    assert parse_flags(["--", "-ID", "x"], EXEC) == ({}, ["-ID", "x"])
    assert parse_flags(["-", "x"], EXEC) == ({}, ["-", "x"])
    assert parse_flags(["--cwd", "-x", "ID"], EXEC) == ({"cwd": "-x"}, ["ID"])  # a value may start with -


@pytest.mark.parametrize("argv,message", [
    (["--nosuch", "ID"], "flag provided but not defined: -nosuch"),
    (["-eA=1", "ID"], "flag provided but not defined: -eA"),
    (["---env", "A", "ID"], "bad flag syntax: ---env"),
    (["-=x", "ID"], "bad flag syntax: -=x"),
    (["--cwd"], "flag needs an argument: -cwd"),
    (["--tty=yes", "ID"], 'invalid boolean value "yes" for -tty: parse error'),
    (["--preserve-fds", "1.5", "ID"], 'invalid value "1.5" for flag -preserve-fds: parse error'),
    (["--preserve-fds=1x", "ID"], 'invalid value "1x" for flag -preserve-fds: parse error'),
    (["--preserve-fds=9223372036854775808", "ID"],
     'invalid value "9223372036854775808" for flag -preserve-fds: value out of range'),
    (["-u", "1", "--user", "2", "ID"], "Cannot use two forms of the same flag: u user"),
    (["-e", "A", "--env", "B", "-e", "C", "ID"], "Cannot use two forms of the same flag: e env"),
])
def test_flag_errors(argv, message):
    with pytest.raises(FlagError) as e:
        parse_flags(argv, EXEC)
    assert str(e.value) == message


@pytest.mark.parametrize("text,value", [
    ("0", 0), ("12", 12), ("0x1f", 31), ("017", 15), ("0o17", 15), ("0b101", 5), ("1_000", 1000),
    ("0x_1f", 31), ("08", None), ("_1", None), ("", None), (" 1", None), ("+1", None)])
def test_uint_values_as_go_reads_them(text, value):
    if value is None:
        with pytest.raises(FlagError):
            cli.go_int(text, True, "n")
    else:
        assert cli.go_int(text, True, "n") == value


@pytest.mark.parametrize("n,limits,message", [
    (1, (1, 1), None), (0, (1, 1), '"x" requires exactly 1 argument(s)'),
    (2, (1, 1), '"x" requires exactly 1 argument(s)'), (0, (1, 2), '"x" requires a minimum of 1 argument(s)'),
    (3, (1, 2), '"x" requires a maximum of 2 argument(s)'), (5, (1, None), None),
    (1, (0, 0), '"x" requires exactly 0 argument(s)'),
])
def test_check_args(n, limits, message):
    assert check_args("x", ["a"] * n, limits) == message


@pytest.mark.parametrize("cmd", cli.COMMANDS)
def test_every_option_has_a_help_line(cmd):
    mod = importlib.import_module("ociruntime.cli." + cmd)
    text = cli_help.command_help(cmd)
    lines = text.partition("\nOPTIONS:\n")[2].splitlines()
    rows = [re.match(r"^   (\S.*?)  +(\S.*)$", line) for line in lines]
    assert all(rows), lines                # names, then a text, on each line
    assert len(rows) == len({dest for dest, _ in mod.FLAGS.values()})  # one line a flag
    for name, (dest, kind) in mod.FLAGS.items():
        shown = ("-" if len(name) == 1 else "--") + name + ("" if kind == "bool" else " value")
        assert any(shown in m.group(1).split(", ") for m in rows), (cmd, name)


def test_log_debug_formats_nothing_when_off(tmp_path):
    class Boom:
        def __str__(self):
            raise AssertionError("formatted without --debug")
    path = tmp_path / "log"
    quiet = log.Log(str(path), "json", debug=False)
    quiet.debug("step %s", Boom())
    assert not path.exists() or path.read_text() == ""
    loud = log.Log(str(path), "json", debug=True)
    loud.debug("step %s of %d", "a", 2)
    (line,) = path.read_text().splitlines()
    assert line.startswith('{"level":"debug","msg":"step a of 2","time":"')


def test_log_debug_survives_a_closed_stderr():
    r, w = os.pipe()
    saved = os.dup(2)
    try:
        os.dup2(w, 2)
        os.close(w)
        os.close(r)                       # EPIPE on write (Python ignores SIGPIPE)
        log.Log(None, "text", debug=True).debug("nobody reads this")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
