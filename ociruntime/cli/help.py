"""The help texts: `ociruntime help [COMMAND]`, `ociruntime COMMAND --help`, and the help a usage
error prints.  Laid out as runc's (urfave/cli): NAME, USAGE, DESCRIPTION, OPTIONS with one line a
flag.  Each command's option lines are made from its module's FLAGS (every name of a flag, the
long one first, "value" after those that take one) and the texts below, so no flag goes unlisted.
Imported for help and usage errors only."""
import sys

from ociruntime import cli

# command -> (summary, arguments, description, {dest: option text})
TOPICS = {
    "create": (
        "create a container",
        "<container-id>",
        "Creates a container from a bundle: a directory holding config.json and the root filesystem.\n"
        "The container's process waits until `start`; `run` does both.",
        {"bundle": "path to the bundle directory (default: the current directory)",
         "console_socket": "path to an AF_UNIX socket that receives the master end of the console's pseudoterminal",
         "pid_file": "write the container process's pid to this file",
         "no_pivot": "use MS_MOVE and chroot instead of pivot_root (for a rootfs on a ramdisk)",
         "no_new_keyring": "keep the caller's session keyring instead of making one for the container",
         "preserve_fds": "pass N more file descriptors to the container, from 3 (default: 0)"}),
    "start": (
        "start a created container: run its process",
        "<container-id>",
        "Runs the process of a container made by `create`.",
        {}),
    "run": (
        "create and start a container",
        "<container-id>",
        "Creates a container from a bundle and starts it; in the foreground it waits for the process,\n"
        "deletes the container and exits with the process's status.",
        {"bundle": "path to the bundle directory (default: the current directory)",
         "console_socket": "path to an AF_UNIX socket that receives the master end of the console's pseudoterminal",
         "detach": "return once the process runs, leaving the container",
         "keep": "do not delete the container when its process exits",
         "pid_file": "write the container process's pid to this file",
         "no_subreaper": "do not become a subreaper for the container's reparented processes",
         "no_pivot": "use MS_MOVE and chroot instead of pivot_root (for a rootfs on a ramdisk)",
         "no_new_keyring": "keep the caller's session keyring instead of making one for the container",
         "preserve_fds": "pass N more file descriptors to the container, from 3 (default: 0)"}),
    "state": (
        "print the state of a container",
        "<container-id>",
        "Prints the runtime-spec state of a container as JSON.",
        {}),
    "kill": (
        "send a signal to the container's init process (default: SIGTERM)",
        "<container-id> [signal]",
        "The signal is a name (KILL, SIGKILL) or a number; 0 only checks that the container runs.",
        {"all": "send the signal to every process of the container"}),
    "delete": (
        "delete a container and what it holds",
        "<container-id>",
        "Deletes a stopped or created container: its cgroups, its state, then its poststop hooks.",
        {"force": "kill a running container (SIGKILL) and delete it"}),
    "list": (
        "list the containers in the state directory (--root)",
        "",
        "",
        {"format": "table or json (default: table)",
         "quiet": "print the container ids only"}),
    "ps": (
        "show the processes of a container",
        "<container-id> [ps options]",
        "Runs ps(1) with the arguments after the container id (default: -ef) and keeps the\n"
        "container's processes.",
        {"format": "table or json (default: table)"}),
    "pause": (
        "suspend every process of a container",
        "<container-id>",
        "Freezes the container's cgroup.",
        {}),
    "resume": (
        "resume the processes of a paused container",
        "<container-id>",
        "Thaws the container's cgroup.",
        {}),
    "spec": (
        "write a starter config.json",
        "",
        "Writes config.json for a bundle (as `runc spec`); edit it before use.",
        {"bundle": "the bundle directory to write it in",
         "rootless": "a configuration for a container run without root"}),
    "update": (
        "change the resource limits of a container",
        "<container-id>",
        "With --resources (a LinuxResources JSON object, or - for stdin), the other options are\n"
        "ignored. Memory sizes take a unit (100m, 1g); -1 is unlimited.",
        {"resources": "path to a LinuxResources JSON file, or - to read it from stdin",
         "blkio_weight": "block IO weight, 10 to 1000",
         "cpu_period": "CPU CFS period (microseconds)",
         "cpu_quota": "CPU CFS quota (microseconds of CPU time a period)",
         "cpu_share": "CPU shares (a weight relative to the other cgroups)",
         "cpu_rt_period": "CPU realtime period (microseconds)",
         "cpu_rt_runtime": "CPU realtime runtime (microseconds a period)",
         "cpuset_cpus": "the CPUs to run on (0-3,5)",
         "cpuset_mems": "the memory nodes to use",
         "memory": "memory limit",
         "memory_reservation": "memory soft limit",
         "memory_swap": "memory plus swap limit; -1 for unlimited swap",
         "kernel_memory": "kernel memory limit (deprecated: not set by recent kernels)",
         "kernel_memory_tcp": "kernel TCP buffer memory limit (deprecated)",
         "pids_limit": "maximum number of processes",
         "l3_cache_schema": "Intel RDT L3 cache schema (not supported: refused)",
         "mem_bw_schema": "Intel RDT memory bandwidth schema (not supported: refused)"}),
    "events": (
        "print the container's events and resource statistics",
        "<container-id>",
        "Prints an OOM event when one happens and the statistics every interval, as JSON lines.",
        {"interval": "how often to print the statistics (default: 5s)",
         "stats": "print the statistics once and exit"}),
    "exec": (
        "run a new process in a container",
        "<container-id> <command> [command options]  || -p process.json <container-id>",
        "Everything after the container id is the command and its arguments: the options come\n"
        "before the id. Exits with the process's status, 255 when it could not be started.",
        {"console_socket": "path to an AF_UNIX socket that receives the master end of the console's pseudoterminal",
         "cwd": "working directory of the process",
         "env": "set an environment variable, K=V (repeatable)",
         "tty": "allocate a pseudoterminal",
         "user": "the user, UID[:GID] (numeric)",
         "gids": "an additional group id (repeatable)",
         "process": "a runtime-spec process JSON file (the other process options are then ignored)",
         "detach": "return once the process runs",
         "pid_file": "write the process's pid to this file",
         "process_label": "SELinux label of the process",
         "apparmor": "AppArmor profile of the process",
         "no_new_privs": "set no_new_privs for the process",
         "cap": "add a capability (repeatable)",
         "preserve_fds": "pass N more file descriptors to the process, from 3 (default: 0)",
         "cgroup": "run in a sub-cgroup of the container's, [CONTROLLER[,CONTROLLER]:]PATH (repeatable)",
         "ignore_paused": "exec in a paused container (the process stays frozen until resume)"}),
    "features": (
        "show the enabled features",
        "",
        "Prints the runtime-spec features document (JSON) of what this runtime supports here.",
        {}),
}

GLOBAL_TEXTS = {
    "debug": "write debug lines to the log",
    "log": "the log file (default: stderr)",
    "log_format": "text or json (default: text)",
    "root": "the state directory (default: /run/ociruntime; $XDG_RUNTIME_DIR/ociruntime without root)",
    "criu": "accepted for runc's callers; checkpoint and restore are not supported",
    "systemd_cgroup": 'use the systemd cgroup driver ("slice:prefix:name" cgroupsPath)',
    "rootless": "accepted for runc's callers (true, false or auto)",
    "help": "show help",
    "version": "print the version",
}


def _options(flags, texts):
    """[(names as shown, text)] in the table's order, one entry a flag."""
    rows, seen = [], {}
    for name, (dest, kind) in flags.items():
        shown = ("-" if len(name) == 1 else "--") + name + ("" if kind == "bool" else " value")
        if dest in seen:
            rows[seen[dest]][0] += ", " + shown
        else:
            seen[dest] = len(rows)
            rows.append([shown, texts.get(dest, "")])
    return rows


def _table(rows):
    width = max(len(r[0]) for r in rows)
    return "".join("   %s  %s\n" % (r[0].ljust(width), r[1]) for r in rows)


def command_help(cmd):
    mod = __import__("ociruntime.cli." + cmd, fromlist=["FLAGS"])
    summary, args, description, texts = TOPICS[cmd]
    usage = " ".join(x for x in ("ociruntime", cmd, "[command options]" if mod.FLAGS else "", args) if x)
    out = "NAME:\n   ociruntime %s - %s\n\nUSAGE:\n   %s\n" % (cmd, summary, usage)
    if description:
        out += "\nDESCRIPTION:\n" + "".join("   %s\n" % line for line in description.split("\n"))
    if mod.FLAGS:
        out += "\nOPTIONS:\n" + _table(_options(mod.FLAGS, texts))
    return out


def app_help():
    cmds = [[c, TOPICS[c][0]] for c in cli.COMMANDS] + [["help, h", "show the commands, or the help of one"]]
    return ("NAME:\n   ociruntime - an OCI runtime-spec container runtime with runc's command line\n\n"
            "USAGE:\n   ociruntime [global options] command [command options] [arguments...]\n\n"
            "VERSION:\n   %s\nspec: %s\n\nCOMMANDS:\n%s\nGLOBAL OPTIONS:\n%s"
            % (cli.VERSION, cli.SPEC_VERSION, _table(cmds), _table(_options(cli.GLOBAL_FLAGS, GLOBAL_TEXTS))))


def show(topic):
    """`ociruntime help [TOPIC]`: 0, or runc's 3 for a topic that is not a command."""
    if topic is None:
        sys.stdout.write(app_help())
        return 0
    if topic not in TOPICS:
        from ociruntime import log
        log.current.error("No help topic for '%s'" % topic)
        return 3
    sys.stdout.write(command_help(topic))
    return 0
