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
 * setup.py builds it only where the static library exists and falls back to the -IS script.
 * No policy here: only what an interpreter's main() does. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <marshal.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "launcher_cfg.h" /* OCI_PYTHON, OCI_STDLIB_PATHS[] (NULL-terminated),
                             OCI_MAIN_CODE[] (the entry script's code, marshalled at build),
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

int main(int argc, char **argv)
{
    PyConfig c;
    PyImport_FrozenModules = OCI_FROZEN; /* looked up before the stdlib's own frozen modules */
    PyConfig_InitPythonConfig(&c); /* as the python program; then -I -S */
    c.isolated = 1;                /* implies -E -s -P */
    c.site_import = 0;
    c.parse_argv = 0; /* sys.argv is argv: the command's own options are not python's */
    c.pathconfig_warnings = 0;
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
        return 1;
    }
    Py_DECREF(res);
    Py_XDECREF(code);
    Py_XDECREF(file);
    return Py_FinalizeEx() < 0 ? 120 : 0;
}
