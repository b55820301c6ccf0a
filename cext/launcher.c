/* The `ociruntime` program: CPython embedded through its public C API, running the package's own
 * modules, whose bytecode setup.py compiles and freezes into the program at `pip install`.
 *
 * It starts the interpreter as `python -I -S` would start it (isolated: no PYTHON* variables, no
 * user site, no current directory on sys.path; no `site`), never writes bytecode, and runs
 * ociruntime._program, which finds the installation's site-packages and calls the command line.
 *
 * Where the standard library is, is found when the program runs, from where it is installed,
 * never from where it was built: a wheel built on one machine is installed into another Python of
 * the same minor version elsewhere.  In order: the base installation of the venv the program sits
 * in (pyvenv.cfg's `home`), the directories above the program (an installation's own bin/, or
 * /usr/local/bin above /usr), then pythonX.Y on PATH.  The first with lib/pythonX.Y/os.py (or
 * lib64/) is the installation; without one the program says so in one line and exits 1.
 *
 * Built by setup.py (build_launcher), which defines, in launcher_cfg.h:
 *   OCI_FROZEN[]   the package's modules (name, marshalled code, is_package), ending with {0};
 *   OCI_SOURCE     (editable installs only) the source tree, put first on sys.path instead: the
 *                  package is then imported from it, and its bytecode cached there as usual.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launcher_cfg.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define PYDIR "python" STR(PY_MAJOR_VERSION) "." STR(PY_MINOR_VERSION)

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* the parent directory of `path`, in place ("/" stays "/") */
static void up(char *path)
{
    char *slash = strrchr(path, '/');
    if (!slash)
        return;
    if (slash == path)
        slash[1] = 0;
    else
        *slash = 0;
}

/* `prefix` holds lib/pythonX.Y/os.py (or lib64/): the standard library and lib-dynload are written to
   `stdlib` and `dynload` (each PATH_MAX) */
static int installation(const char *prefix, char *stdlib, char *dynload)
{
    static const char *const libdirs[] = {"lib", "lib64"};
    char landmark[PATH_MAX];
    for (size_t i = 0; i < sizeof libdirs / sizeof *libdirs; i++) {
        snprintf(stdlib, PATH_MAX, "%s/%s/" PYDIR, strcmp(prefix, "/") ? prefix : "", libdirs[i]);
        snprintf(landmark, sizeof landmark, "%s/os.py", stdlib);
        if (!is_file(landmark)) {
            snprintf(landmark, sizeof landmark, "%s/os.pyc", stdlib);
            if (!is_file(landmark))
                continue;
        }
        /* lib-dynload beside it, or under the other lib directory (lib64 distributions) */
        for (size_t j = 0; j < sizeof libdirs / sizeof *libdirs; j++) {
            snprintf(dynload, PATH_MAX, "%s/%s/" PYDIR "/lib-dynload", strcmp(prefix, "/") ? prefix : "",
                     libdirs[(i + j) % 2]);
            if (is_dir(dynload))
                return 1;
        }
        dynload[0] = 0; /* an installation with every extension module built in */
        return 1;
    }
    return 0;
}

/* the first of `dir` and its ancestors that is an installation, into `prefix` */
static int search_up(const char *dir, char *prefix, char *stdlib, char *dynload)
{
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s", dir);
    for (;;) {
        if (installation(d, stdlib, dynload)) {
            snprintf(prefix, PATH_MAX, "%s", d);
            return 1;
        }
        if (strcmp(d, "/") == 0)
            return 0;
        up(d);
    }
}

/* pyvenv.cfg's `home` (the base interpreter's directory) when `dir` holds one */
static int venv_home(const char *dir, char *home)
{
    char path[PATH_MAX], line[PATH_MAX + 64];
    FILE *f;
    int found = 0;
    snprintf(path, sizeof path, "%s/pyvenv.cfg", dir);
    f = fopen(path, "re");
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *key = line, *eq = strchr(line, '='), *value, *end;
        if (!eq)
            continue;
        *eq = 0;
        value = eq + 1;
        while (*key == ' ' || *key == '\t')
            key++;
        end = eq;
        while (end > key && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = 0;
        if (strcmp(key, "home") != 0)
            continue;
        while (*value == ' ' || *value == '\t')
            value++;
        end = value + strlen(value);
        while (end > value && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
            *--end = 0;
        snprintf(home, PATH_MAX, "%s", value);
        found = *home == '/';
    }
    fclose(f);
    return found;
}

/* The installation whose standard library the program runs with; see the top of this file. */
static int find_installation(const char *bindir, char *prefix, char *stdlib, char *dynload,
                             char *tried, size_t tried_len)
{
    char dir[PATH_MAX], home[PATH_MAX], real[PATH_MAX];
    const char *path;

    snprintf(dir, sizeof dir, "%s", bindir);
    for (int i = 0; i < 2; i++) { /* bin/pyvenv.cfg or pyvenv.cfg above bin/ */
        if (venv_home(dir, home)) {
            if (search_up(home, prefix, stdlib, dynload))
                return 1;
            if (realpath(home, real) && search_up(real, prefix, stdlib, dynload))
                return 1;
            snprintf(tried, tried_len, "the venv's home %s, ", home);
        }
        up(dir);
    }
    if (search_up(bindir, prefix, stdlib, dynload))
        return 1;
    path = getenv("PATH");
    for (const char *p = path ? path : ""; *p;) {
        size_t n = strcspn(p, ":");
        if (n && n < PATH_MAX - 32) {
            char exe[PATH_MAX];
            snprintf(exe, sizeof exe, "%.*s/" PYDIR, (int)n, p);
            if (access(exe, X_OK) == 0 && realpath(exe, real)) {
                up(real);
                if (search_up(real, prefix, stdlib, dynload))
                    return 1;
            }
        }
        p += n + (p[n] == ':');
    }
    snprintf(tried + strlen(tried), tried_len - strlen(tried), "%s and above, " PYDIR " on PATH", bindir);
    return 0;
}

static void fail_status(PyConfig *c, PyStatus st)
{
    PyConfig_Clear(c);
    if (PyStatus_IsExit(st))
        exit(st.exitcode);
    fprintf(stderr, "ociruntime: cannot start Python: %s%s%s\n", st.func ? st.func : "",
            st.func ? ": " : "", st.err_msg ? st.err_msg : "unknown error");
    exit(1);
}

#define CHECK(call)                                                                                \
    do {                                                                                           \
        PyStatus st_ = (call);                                                                     \
        if (PyStatus_Exception(st_))                                                               \
            fail_status(&c, st_);                                                                  \
    } while (0)

static void add_path(PyConfig *c, const char *path)
{
    wchar_t *w = Py_DecodeLocale(path, NULL);
    PyStatus st;
    if (!w) {
        fprintf(stderr, "ociruntime: cannot decode the path %s\n", path);
        exit(1);
    }
    st = PyWideStringList_Append(&c->module_search_paths, w);
    PyMem_RawFree(w);
    if (PyStatus_Exception(st))
        fail_status(c, st);
}

int main(int argc, char **argv)
{
    char exe[PATH_MAX], bindir[PATH_MAX], prefix[PATH_MAX], stdlib[PATH_MAX], dynload[PATH_MAX];
    char tried[3 * PATH_MAX] = "";
    ssize_t n;
    PyConfig c;
    PyObject *mod, *res;

    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || n >= (ssize_t)sizeof exe - 1) {
        if (!realpath(argv[0], exe)) {
            fprintf(stderr, "ociruntime: cannot tell where the program is (/proc/self/exe: %s)\n",
                    strerror(errno));
            return 1;
        }
    } else {
        exe[n] = 0;
    }
    snprintf(bindir, sizeof bindir, "%s", exe);
    up(bindir);
    if (!find_installation(bindir, prefix, stdlib, dynload, tried, sizeof tried)) {
        fprintf(stderr, "ociruntime: cannot find the standard library of Python %d.%d, which this program "
                "was built for (looked at %s); install ociruntime into a Python %d.%d installation or venv "
                "(see the README, Install)\n", PY_MAJOR_VERSION, PY_MINOR_VERSION, tried,
                PY_MAJOR_VERSION, PY_MINOR_VERSION);
        return 1;
    }

#ifndef OCI_SOURCE
    PyImport_FrozenModules = OCI_FROZEN;
#endif
    PyConfig_InitIsolatedConfig(&c);
    c.site_import = 0;
    c.install_signal_handlers = 1; /* as python: SIGINT raises KeyboardInterrupt, SIGPIPE ignored */
    c.parse_argv = 0;
#ifdef OCI_SOURCE
    c.write_bytecode = 1; /* into the source tree of an editable install, as python would */
#else
    c.write_bytecode = 0; /* never into the installation */
#endif
    CHECK(PyConfig_SetBytesArgv(&c, argc, argv));
    CHECK(PyConfig_SetBytesString(&c, &c.program_name, exe));
    CHECK(PyConfig_SetBytesString(&c, &c.executable, exe));
    CHECK(PyConfig_SetBytesString(&c, &c.home, prefix));
    c.module_search_paths_set = 1;
#ifdef OCI_SOURCE
    add_path(&c, OCI_SOURCE);
#endif
    add_path(&c, stdlib);
    if (*dynload)
        add_path(&c, dynload);
    CHECK(Py_InitializeFromConfig(&c));
    PyConfig_Clear(&c);

    mod = PyImport_ImportModule("ociruntime._program");
    res = mod ? PyObject_CallMethod(mod, "main", NULL) : NULL;
    if (!res) {
        PyErr_Print(); /* exits with its status for SystemExit */
        return 1;
    }
    Py_DECREF(res);
    Py_XDECREF(mod);
    return Py_FinalizeEx() < 0 ? 120 : 0;
}
