/* The `ociruntime` program: the command's start, which runs the package's command line
 * (ociruntime._program) in the interpreter of the installation it is installed into.
 *
 * Where the standard library is, is found when the program runs, from where it is installed,
 * never from where it was built (a wheel built on one machine is installed into another Python
 * of the same minor version elsewhere).  In order: the base installation of the venv the program
 * sits in (pyvenv.cfg's `home`), the directories above the program (an installation's own bin/,
 * or /usr/local/bin above /usr), then pythonX.Y on PATH.  The first with lib/pythonX.Y/os.py (or
 * lib64/) is the installation; without one the program says so in one line and exits 1.
 *
 * Then, where setup.py could link it (OCI_EMBEDDED), the program is that interpreter itself: the
 * static libpython of the installation it was built with is linked in, and the package's modules,
 * compiled at `pip install`, are frozen into it (PyImport_FrozenModules); it starts as `python -I
 * -S` starts (PyConfig: isolated, no site, no bytecode writing) and runs them, reading no
 * bytecode file.  Only public C API.  That interpreter is used only with the installation it was
 * built with: its built-in modules and version must be those of the standard library it runs
 * with, which the program recognises by a fingerprint of it taken at build (os.py's size and
 * modification time, the names in lib-dynload; no path).  With any other installation (the
 * wheel moved), or without the embedded interpreter, the program runs the installation's own
 * interpreter, `pythonX.Y -I -S -B`, on the same command line.
 *
 * launcher_cfg.h (setup.py) defines OCI_VERSION ("3.11"), and with OCI_EMBEDDED the fingerprint
 * (OCI_FP_SIZE, OCI_FP_MTIME_NS, OCI_FP_DYNLOAD) and OCI_FROZEN[] (name, marshalled code,
 * is_package, ending with {0}); OCI_SOURCE (editable installs only) is the source tree, put first
 * on sys.path instead of the frozen modules (the package is imported from it, its bytecode
 * cached there as usual).
 */
#ifdef OCI_EMBEDDED
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#endif
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launcher_cfg.h"

#define PYDIR "python" OCI_VERSION

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

/* The directory holding the package: site-packages of the program's own installation (or venv),
   else of the base installation `prefix`. */
static int package_dir(const char *bindir, const char *prefix, char *out)
{
    static const char *const under[] = {
        "/lib/" PYDIR "/site-packages", "/lib64/" PYDIR "/site-packages",
        "/local/lib/" PYDIR "/dist-packages", "/lib/python3/dist-packages",
    };
    char top[PATH_MAX], init[PATH_MAX + 64];
    snprintf(top, sizeof top, "%s", bindir);
    up(top);
    for (int base = 0; base < 2; base++) {
        for (size_t i = 0; i < sizeof under / sizeof *under; i++) {
            snprintf(out, PATH_MAX, "%s%s", base ? prefix : (strcmp(top, "/") ? top : ""), under[i]);
            snprintf(init, sizeof init, "%s/ociruntime/__init__.py", out);
            if (is_file(init))
                return 1;
        }
    }
    return 0;
}

/* Run the installation's own interpreter on the command line: the program's directory's
   pythonX.Y (a venv's, or the installation's own bin/), else the installation's. */
static int run_installation_python(const char *bindir, const char *prefix, int argc, char **argv)
{
    char python[PATH_MAX], site[PATH_MAX], code[2 * PATH_MAX + 256];
    const char *dirs[2] = {bindir, NULL};
    char prefix_bin[PATH_MAX];
    char **args;
    int i, n = 0, found = 0;

    snprintf(prefix_bin, sizeof prefix_bin, "%s/bin", strcmp(prefix, "/") ? prefix : "");
    dirs[1] = prefix_bin;
    for (i = 0; i < 2 && !found; i++) {
        snprintf(python, sizeof python, "%s/" PYDIR, dirs[i]);
        found = access(python, X_OK) == 0;
        if (!found) {
            snprintf(python, sizeof python, "%s/python3", dirs[i]);
            found = access(python, X_OK) == 0;
        }
    }
    if (!found) {
        fprintf(stderr, "ociruntime: the Python %s installation in %s has no %s program to run ociruntime "
                "with\n", OCI_VERSION, prefix, PYDIR);
        return 1;
    }
#ifdef OCI_SOURCE
    snprintf(site, sizeof site, "%s", OCI_SOURCE);
#else
    if (!package_dir(bindir, prefix, site)) {
        fprintf(stderr, "ociruntime: the ociruntime package is not installed beside this program (%s) or in "
                "the Python %s installation in %s\n", bindir, OCI_VERSION, prefix);
        return 1;
    }
#endif
    /* the path as a Python bytes literal: no quoting issue whatever it holds */
    n = snprintf(code, sizeof code, "import sys; sys.path[:0] = [b'");
    for (const unsigned char *p = (const unsigned char *)site; *p && n < (int)sizeof code - 160; p++)
        n += snprintf(code + n, sizeof code - n, "\\x%02x", *p);
    snprintf(code + n, sizeof code - n,
             "'.decode(sys.getfilesystemencoding(), 'surrogateescape')]; "
             "from ociruntime._program import main; main()");
    args = calloc((size_t)argc + 6, sizeof *args);
    if (!args) {
        fprintf(stderr, "ociruntime: out of memory\n");
        return 1;
    }
    n = 0;
    args[n++] = python;
    args[n++] = "-I";
    args[n++] = "-S";
#ifndef OCI_SOURCE
    args[n++] = "-B"; /* never into the installation */
#endif
    args[n++] = "-c";
    args[n++] = code;
    for (i = 1; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    execv(python, args);
    fprintf(stderr, "ociruntime: exec %s: %s\n", python, strerror(errno));
    return 1;
}

#ifdef OCI_EMBEDDED
static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether the standard library found is the one this interpreter was built with (see the top). */
static int same_installation(const char *stdlib, const char *dynload)
{
    char path[PATH_MAX];
    struct stat st;
    DIR *d;
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, over the sorted names each ended by "\n" */
    int ok = 0;

    snprintf(path, sizeof path, "%s/os.py", stdlib);
    if (stat(path, &st) != 0 || (uint64_t)st.st_size != OCI_FP_SIZE ||
        (uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec != OCI_FP_MTIME_NS)
        return 0;
    d = opendir(*dynload ? dynload : "/nonexistent");
    if (d) {
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            if (n == cap) {
                char **more = realloc(names, (cap = cap ? 2 * cap : 128) * sizeof *names);
                if (!more)
                    goto out;
                names = more;
            }
            if (!(names[n] = strdup(e->d_name)))
                goto out;
            n++;
        }
    }
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)names[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ULL;
        h = (h ^ '\n') * 1099511628211ULL;
    }
    ok = h == OCI_FP_DYNLOAD;
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (d)
        closedir(d);
    return ok;
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
#endif

#ifdef OCI_EMBEDDED
static int run_embedded(int argc, char **argv, const char *exe, const char *prefix, const char *stdlib,
                        const char *dynload);
#endif

int main(int argc, char **argv)
{
    char exe[PATH_MAX], bindir[PATH_MAX], prefix[PATH_MAX], stdlib[PATH_MAX], dynload[PATH_MAX];
    char tried[3 * PATH_MAX] = "";
    ssize_t n;

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
        fprintf(stderr, "ociruntime: cannot find the standard library of Python %s, which this program "
                "was built for (looked at %s); install ociruntime into a Python %s installation or venv "
                "(see the README, Install)\n", OCI_VERSION, tried, OCI_VERSION);
        return 1;
    }

#ifdef OCI_EMBEDDED
    if (same_installation(stdlib, dynload))
        return run_embedded(argc, argv, exe, prefix, stdlib, dynload);
#endif
    return run_installation_python(bindir, prefix, argc, argv);
}

#ifdef OCI_EMBEDDED
static int run_embedded(int argc, char **argv, const char *exe, const char *prefix, const char *stdlib,
                        const char *dynload)
{
    PyPreConfig pre;
    PyConfig c;
    PyObject *mod, *res;
    PyStatus st;

#ifndef OCI_SOURCE
    PyImport_FrozenModules = OCI_FROZEN;
#endif
    /* pre-initialised as python's, isolated (`python -I`): the locale set from the environment,
       the C locale coerced and UTF-8 mode in it, as python does (an isolated pre-configuration
       would leave the C locale and its ASCII encoding) */
    PyPreConfig_InitPythonConfig(&pre);
    pre.isolated = 1;
    pre.use_environment = 0;
    st = Py_PreInitialize(&pre);
    if (PyStatus_Exception(st)) {
        fprintf(stderr, "ociruntime: cannot start Python: %s\n", st.err_msg ? st.err_msg : "pre-initialisation");
        return 1;
    }
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
    /* the installation it was built with (same_installation): its paths are the build's, which
       the interpreter computes from its home as python does */
    CHECK(PyConfig_SetBytesString(&c, &c.home, prefix));
#ifdef OCI_SOURCE
    c.module_search_paths_set = 1;
    add_path(&c, OCI_SOURCE);
    add_path(&c, stdlib);
    if (*dynload)
        add_path(&c, dynload);
#else
    (void)stdlib;
    (void)dynload;
#endif
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
#endif
