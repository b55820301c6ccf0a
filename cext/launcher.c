/* The `ociruntime` command as a program: the interpreter it was built with, linked in statically
 * (libpython3.X.a of that installation), started as `python -I -S` would be, running the entry
 * script (tools/ociruntime) that setup.py compiles and bakes into launcher_cfg.h.
 *
 * Why: a command of this runtime is mostly interpreter start-up.  Against `python3 -IS SCRIPT`
 * with a shared libpython (pyenv, most distributions' venvs), this saves the dynamic linker's
 * relocation and symbol binding of libpython and the script's read (~1.5 ms a command on the
 * machines we measure, bench/run.py), the script's compilation (its bytecode is baked in: ~0.5 ms)
 * and the import from disk of the codec modules every start-up loads (encodings, its aliases and
 * utf_8 are frozen in, compiled from this installation's stdlib at build: ~0.6 ms).  Nothing else
 * differs: getpath computes the prefixes from the real interpreter's path as for python (a venv
 * is found by its pyvenv.cfg; sys._stdlib_dir gives the frozen encodings package its __path__,
 * where the other codecs are), the module search path is the stdlib's (as -I -S has it), same
 * flags (isolated, no site, signal handlers as python's), sys.executable is the real interpreter,
 * and C extension modules resolve the C API from this program (exported with LINKFORSHARED, as
 * python itself is linked).
 *
 * On CPython 3.11 the second ("main") phase of the initialisation is taken step by step here
 * (main_phase: Python/pylifecycle.c's init_interp_main, whose steps are internal API of that
 * version), so that four steps a command may not need are not taken up front: the codec registry
 * (the encodings package, imported to normalise the name of the file system encoding: for a
 * utf-8 one, the usual case, the name is set as it would come out), the three stdio streams
 * (each made when first used), importlib's path finder with zipimport (installed by the first
 * import that needs them) and the io module's C half (_io, for builtins.open): cext/lazy.py,
 * ~2.5 ms of every command.  The path configuration is the one setup.py's probe computed
 * (baked_path_config: getpath is not run again, ~0.7 ms).  Other versions, or where this does
 * not build (-DOCI_FULL_INIT), take the whole phase in Py_InitializeFromConfig.
 * On 3.11 too, the strings of the modules deep-frozen into the interpreter (importlib's two
 * halves, zipimport, os, codecs, ... ~800 kB of static objects) are interned when the module is
 * first loaded rather than all at start-up (lazy_deepfreeze), and the program is linked without
 * PIE (as Debian links its python3 and runc): together, the static objects of modules a command
 * never loads are neither relocated nor written, so their pages are never copied (~200 page
 * faults, ~1.7 ms a command).
 *
 * setup.py builds it only where the static library exists and falls back to the -IS script.
 * No policy here: only what an interpreter's main() does, and the shim's binding linked in
 * (_ociruntime_shim, cext/shimmodule.c: flock and poll for start, kill and delete among the rest). */
#define PY_SSIZE_T_CLEAN
#include <patchlevel.h>
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000 && !defined(OCI_FULL_INIT)
#define OCI_MAIN_PHASE 1
#define Py_BUILD_CORE 1 /* for the internal headers below */
#endif
#include <Python.h>
#include <marshal.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>
#include <wctype.h>

#ifdef OCI_MAIN_PHASE
#include "internal/pycore_initconfig.h"
#include "internal/pycore_interp.h"
#include "internal/pycore_pathconfig.h"
#include "internal/pycore_pylifecycle.h"
#include "internal/pycore_pystate.h"
#include "internal/pycore_runtime.h"
#include "internal/pycore_code.h"
#include "internal/pycore_import.h"
#endif

#include "launcher_cfg.h" /* OCI_PYTHON, OCI_STDLIB_PATHS[] (NULL-terminated),
                             OCI_MAIN_CODE[] (the entry script's code, marshalled at build),
                             OCI_LAZY_CODE[] (cext/lazy.py's code),
                             OCI_FROZEN[] (stdlib modules every start-up imports, frozen) */

static void fail(PyConfig *c, PyStatus st)
{
    PyConfig_Clear(c);
    Py_ExitStatusException(st);
}

#define CHECK(call)                                                                                \
    do {                                                                                           \
        PyStatus st_ = (call);                                                                     \
        if (PyStatus_Exception(st_))                                                               \
            fail(&c, st_);                                                                         \
    } while (0)

#ifdef OCI_MAIN_PHASE
/* as CHECK, once the configuration is the interpreter's (nothing of ours to clear) */
static void status(PyStatus st)
{
    if (PyStatus_Exception(st))
        Py_ExitStatusException(st);
}

/* Deep-frozen modules (Python/deepfreeze.c: their code objects, names and constants are static
 * objects in the program) have their strings interned by _Py_Deepfreeze_Init, all of them at
 * start-up, which writes to every page of them.  Here each module's are interned when its code is
 * first asked for (the get_code of its entry in the frozen tables, which importlib calls to load
 * it): the tables are copied with each get_code replaced by a wrapper that interns the code tree
 * it returns (the same _PyStaticCode_InternStrings on each code object), and _Py_Deepfreeze_Init
 * is this program's (setup.py links with --allow-multiple-definition; the first, this one, wins).
 * Should the tables not fit, they stay as they are and everything is interned at start-up. */
#define OCI_GETTERS 48
static PyObject *(*getters[OCI_GETTERS])(void); /* the tables' own get_code functions */
static char interned[OCI_GETTERS];
static struct _frozen tables[3][OCI_GETTERS];
static int eager_interning = 1;

static int intern_tree(PyObject *co)
{
    if (_PyStaticCode_InternStrings((PyCodeObject *)co) < 0)
        return -1;
    PyObject *consts = ((PyCodeObject *)co)->co_consts;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(consts); i++) {
        PyObject *c = PyTuple_GET_ITEM(consts, i);
        if (PyCode_Check(c) && intern_tree(c) < 0)
            return -1;
    }
    return 0;
}

static PyObject *get_code(int i)
{
    PyObject *co = getters[i]();
    if (co && !interned[i]) {
        if (intern_tree(co) < 0)
            return NULL;
        interned[i] = 1;
    }
    return co;
}

#define G(i) static PyObject *get_##i(void) { return get_code(i); }
G(0) G(1) G(2) G(3) G(4) G(5) G(6) G(7) G(8) G(9) G(10) G(11) G(12) G(13) G(14) G(15) G(16) G(17)
G(18) G(19) G(20) G(21) G(22) G(23) G(24) G(25) G(26) G(27) G(28) G(29) G(30) G(31) G(32) G(33)
G(34) G(35) G(36) G(37) G(38) G(39) G(40) G(41) G(42) G(43) G(44) G(45) G(46) G(47)
static PyObject *(*const wrappers[OCI_GETTERS])(void) = {
    get_0,  get_1,  get_2,  get_3,  get_4,  get_5,  get_6,  get_7,  get_8,  get_9,  get_10, get_11,
    get_12, get_13, get_14, get_15, get_16, get_17, get_18, get_19, get_20, get_21, get_22, get_23,
    get_24, get_25, get_26, get_27, get_28, get_29, get_30, get_31, get_32, get_33, get_34, get_35,
    get_36, get_37, get_38, get_39, get_40, get_41, get_42, get_43, get_44, get_45, get_46, get_47};

/* ``copy``: ``table`` with each get_code wrapped (aliases share their module's); -1 if too many */
static int wrap_table(const struct _frozen *table, struct _frozen *copy, int *n_getters)
{
    int n = 0;
    for (const struct _frozen *p = table; p->name; p++, n++) {
        if (n + 1 >= OCI_GETTERS)
            return -1;
        copy[n] = *p;
        if (!p->get_code)
            continue;
        int i = 0;
        while (i < *n_getters && getters[i] != p->get_code)
            i++;
        if (i == *n_getters) {
            if (i == OCI_GETTERS)
                return -1;
            getters[(*n_getters)++] = p->get_code;
        }
        copy[n].get_code = wrappers[i];
    }
    memset(&copy[n], 0, sizeof(copy[n]));
    return 0;
}

static void lazy_deepfreeze(void)
{
    const struct _frozen **t[3] = {&_PyImport_FrozenBootstrap, &_PyImport_FrozenStdlib, &_PyImport_FrozenTest};
    int n_getters = 0;
    for (int k = 0; k < 3; k++)
        if (wrap_table(*t[k], tables[k], &n_getters) < 0)
            return;
    for (int k = 0; k < 3; k++)
        *t[k] = tables[k];
    eager_interning = 0;
}

int _Py_Deepfreeze_Init(void)
{
    if (!eager_interning)
        return 0;
    const struct _frozen *t[3] = {_PyImport_FrozenBootstrap, _PyImport_FrozenStdlib, _PyImport_FrozenTest};
    for (int k = 0; k < 3; k++)
        for (const struct _frozen *p = t[k]; p->name; p++)
            if (p->get_code && intern_tree(p->get_code()) < 0)
                return -1;
    return 0;
}

/* init_fs_codec of unicodeobject.c, for a file system encoding that is utf-8 under any spelling
 * Python normalises to "utf-8" without a codec lookup (the usual: a UTF-8 locale, or the C locale
 * and UTF-8 mode); anything else gets the whole of _PyUnicode_InitEncodings. */
static int fs_codec(PyInterpreterState *interp, PyConfig *config)
{
    wchar_t name[8];
    size_t i = 0;
    const wchar_t *p = config->filesystem_encoding;
    for (; *p && i < sizeof(name) / sizeof(*name) - 1; p++)
        name[i++] = *p == L'_' ? L'-' : (wchar_t)towlower(*p);
    name[i] = 0;
    if (*p || (wcscmp(name, L"utf-8") && wcscmp(name, L"utf8"))) {
        status(_PyUnicode_InitEncodings(PyThreadState_Get()));
        return 0;
    }
    PyObject *errors_obj = PyUnicode_FromWideChar(config->filesystem_errors, -1);
    const char *errors_utf8 = errors_obj ? PyUnicode_AsUTF8(errors_obj) : NULL;
    if (!errors_utf8) {
        Py_XDECREF(errors_obj);
        return -1;
    }
    char *encoding = PyMem_RawMalloc(sizeof("utf-8"));
    char *errors = PyMem_RawMalloc(strlen(errors_utf8) + 1);
    wchar_t *wencoding = PyMem_RawMalloc(sizeof(L"utf-8"));
    if (!encoding || !errors || !wencoding) {
        Py_DECREF(errors_obj);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(encoding, "utf-8", sizeof("utf-8"));
    strcpy(errors, errors_utf8);
    memcpy(wencoding, L"utf-8", sizeof(L"utf-8"));
    Py_DECREF(errors_obj);
    PyMem_RawFree(config->filesystem_encoding); /* the normalised name, as sys reports it */
    config->filesystem_encoding = wencoding;
    struct _Py_unicode_fs_codec *codec = &interp->unicode.fs_codec;
    PyMem_RawFree(codec->encoding);
    codec->encoding = encoding;
    codec->utf8 = 1;
    PyMem_RawFree(codec->errors);
    codec->errors = errors;
    codec->error_handler = _Py_GetErrorHandler(errors);
    if (_Py_SetFileSystemEncoding(codec->encoding, codec->errors) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* cext/lazy.py: sys.stdin, stdout and stderr made when first used, the path finder and zipimport
 * installed and _io imported when first needed */
static int lazy(const PyConfig *config)
{
    PyObject *g = PyDict_New(), *name = PyUnicode_FromString("ociruntime_lazy"), *code = NULL, *r = NULL;
    if (g && name && PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) == 0 &&
        PyDict_SetItemString(g, "__name__", name) == 0)
        code = PyMarshal_ReadObjectFromString((const char *)OCI_LAZY_CODE, sizeof(OCI_LAZY_CODE));
    Py_XDECREF(name);
    if (code)
        r = PyEval_EvalCode(code, g, g);
    Py_XDECREF(code);
    if (r) {
        Py_DECREF(r);
        PyObject *install = PyDict_GetItemString(g, "install"); /* borrowed */
        r = install ? PyObject_CallFunction(install, "uui", config->stdio_encoding, config->stdio_errors,
                                            config->buffered_stdio)
                    : NULL;
    }
    Py_XDECREF(g);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* The path configuration getpath computed for the probe setup.py built first (OCI_PATH_CONFIG:
 * sys._base_executable, prefix, base_prefix, exec_prefix, base_exec_prefix, _stdlib_dir and
 * platlibdir), set as
 * getpath would set it: getpath runs Python code and looks for a dozen files each start (~0.25
 * ms).  Only while the stdlib is still where it was (its os.py, getpath's own landmark); -1
 * otherwise, and getpath computes it. */
static int baked_path_config(PyConfig *config)
{
    static const char *const found[] = {OCI_PATH_CONFIG NULL};
    if (sizeof(found) / sizeof(*found) != 8)
        return -1;
    char landmark[PATH_MAX];
    if (snprintf(landmark, sizeof(landmark), "%s/os.py", found[5]) >= (int)sizeof(landmark) ||
        access(landmark, F_OK) < 0)
        return -1;
    wchar_t **fields[] = {&config->base_executable, &config->prefix,      &config->base_prefix,
                          &config->exec_prefix,     &config->base_exec_prefix, &config->stdlib_dir,
                          &config->platlibdir};
    for (int i = 0; i < 7; i++)
        if (PyStatus_Exception(PyConfig_SetBytesString(config, fields[i], found[i])))
            return -1;
    return 0;
}

/* init_interp_main of Python/pylifecycle.c (3.11), in its order, for the main interpreter with
 * the import system: the path configuration and sys, faulthandler, the file system codec
 * (fs_codec), signals, tracemalloc, the stdio streams, the path finder and builtins.open (lazy:
 * their stand-ins), __main__; then the interpreter counts as initialised.  Not taken: the codec
 * registry (made by the first codec lookup, as always), the streams themselves (made when first
 * used), init_importlib_external (the path finder and zipimport: installed by the first import
 * no other finder has) and _io (imported by whatever first needs it, open included); warnings
 * (isolated mode: no -W options) and site (-S) are not imported by python -I -S either. */
static int main_phase(void)
{
    PyThreadState *ts = PyThreadState_Get();
    PyInterpreterState *interp = ts->interp;
    PyConfig *config = &interp->config;
    if (baked_path_config(config) < 0)
        status(_PyConfig_InitPathConfig(config, 1));
    else
        status(_PyConfig_InitPathConfig(config, 0)); /* (reads what Py_SetPath and the like set) */
    status(_PyPathConfig_UpdateGlobal(config));
    if (_PySys_UpdateConfig(ts) < 0)
        return -1;
    status(_PyFaulthandler_Init(config->faulthandler));
    if (fs_codec(interp, config) < 0)
        return -1;
    if (_PySignal_Init(config->install_signal_handlers) < 0 || _PyTraceMalloc_Init(config->tracemalloc) < 0)
        return -1;
    if (lazy(config) < 0) /* builtins.open too (a stand-in until _io is imported) */
        return -1;
    PyObject *main_mod = PyImport_AddModule("__main__"); /* borrowed */
    PyObject *d = main_mod ? PyModule_GetDict(main_mod) : NULL;
    PyObject *ann = d ? PyDict_New() : NULL;
    PyObject *builtins = ann ? PyImport_ImportModule("builtins") : NULL;
    PyObject *loader = builtins ? PyObject_GetAttrString(interp->importlib, "BuiltinImporter") : NULL;
    int bad = !loader || PyDict_SetItemString(d, "__annotations__", ann) < 0 ||
              PyDict_SetItemString(d, "__builtins__", builtins) < 0 ||
              PyDict_SetItemString(d, "__loader__", loader) < 0;
    Py_XDECREF(ann);
    Py_XDECREF(builtins);
    Py_XDECREF(loader);
    if (bad)
        return -1;
    interp->runtime->initialized = 1;
    return 0;
}
#endif

/* the shim's binding (cext/shimmodule.c, linked in): the built-in module _ociruntime_shim, which
   ociruntime/_sys.py uses instead of loading ociruntime/_shim.abi3.so (~0.2 ms of create, run and
   exec), and ociruntime.flock and .poll in every command */
PyMODINIT_FUNC PyInit__shim(void);

int main(int argc, char **argv)
{
    PyConfig c;
    PyImport_FrozenModules = OCI_FROZEN; /* looked up before the stdlib's own frozen modules */
    if (PyImport_AppendInittab("_ociruntime_shim", PyInit__shim) < 0)
        return 1;
#ifdef OCI_MAIN_PHASE
    lazy_deepfreeze();
#endif
    PyConfig_InitPythonConfig(&c); /* as the python program; then -I -S */
    c.isolated = 1;                /* implies -E -s -P */
    c.site_import = 0;
    c.parse_argv = 0; /* sys.argv is argv: the command's own options are not python's */
    c.pathconfig_warnings = 0;
#ifdef OCI_MAIN_PHASE
    c._init_main = 0; /* main_phase() takes the second phase */
#endif
    CHECK(PyConfig_SetBytesArgv(&c, argc, argv));
    CHECK(PyConfig_SetBytesString(&c, &c.program_name, OCI_PYTHON));
    CHECK(PyConfig_SetBytesString(&c, &c.executable, OCI_PYTHON));
    c.module_search_paths_set = 1;
    for (const char *const *p = OCI_STDLIB_PATHS; *p; p++) {
        wchar_t *w = Py_DecodeLocale(*p, NULL);
        if (!w) {
            PyConfig_Clear(&c);
            fprintf(stderr, "ociruntime: cannot decode %s\n", *p);
            return 1;
        }
        PyStatus st = PyWideStringList_Append(&c.module_search_paths, w);
        PyMem_RawFree(w);
        if (PyStatus_Exception(st))
            fail(&c, st);
    }
    CHECK(Py_InitializeFromConfig(&c));
    PyConfig_Clear(&c);
#ifdef OCI_MAIN_PHASE
    if (main_phase() < 0) {
        PyErr_Print();
        return 1;
    }
#endif

    /* the script's __file__: this program (it finds the installation's site-packages from it) */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        n = snprintf(self, sizeof(self), "%s", argv[0]);
    self[n < (ssize_t)sizeof(self) ? n : (ssize_t)sizeof(self) - 1] = 0;

    PyObject *main_mod = PyImport_AddModule("__main__"); /* borrowed */
    PyObject *globals = main_mod ? PyModule_GetDict(main_mod) : NULL;
    PyObject *file = PyUnicode_DecodeFSDefault(self);
    PyObject *code = NULL, *res = NULL;
    if (globals && file && PyDict_SetItemString(globals, "__file__", file) == 0)
        code = PyMarshal_ReadObjectFromString((const char *)OCI_MAIN_CODE, sizeof(OCI_MAIN_CODE));
    if (code)
        res = PyEval_EvalCode(code, globals, globals);
    if (!res) {
        PyErr_Print(); /* exits for SystemExit, as python does */
        Py_FinalizeEx(); /* flushes stdout and stderr, as python does after a traceback */
        return 1;
    }
    Py_DECREF(res);
    Py_XDECREF(code);
    Py_XDECREF(file);
    return Py_FinalizeEx() < 0 ? 120 : 0;
}
