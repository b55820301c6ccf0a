/* The `ociruntime` command as a program: the interpreter it was built with, linked in statically
 * (libpython3.X.a of that installation), started as `python -I -S` would be, running the entry
 * script (tools/ociruntime) that setup.py bakes into launcher_cfg.h.
 *
 * Why: a command of this runtime is mostly interpreter start-up.  Against `python3 -IS SCRIPT`
 * with a shared libpython (pyenv, most distributions' venvs), this saves the dynamic linker's
 * relocation and symbol binding of libpython, getpath's search for the prefix (given here), and
 * the script's read: ~1.5 ms a command on the machines we measure (bench/run.py).  Nothing else
 * differs: same stdlib, same site-packages, same flags (isolated, no site, signal handlers as
 * python's), sys.executable is the real interpreter, and C extension modules resolve the C API
 * from this program (exported with LINKFORSHARED, as python itself is linked).
 *
 * setup.py builds it only where the static library exists and falls back to the -IS script.
 * No policy here: only what an interpreter's main() does. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "launcher_cfg.h" /* OCI_PYTHON, OCI_PREFIX, OCI_EXEC_PREFIX, OCI_BASE_PREFIX,
                             OCI_BASE_EXEC_PREFIX, OCI_STDLIB_PATHS[] (NULL-terminated), OCI_MAIN */

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
    PyConfig_InitPythonConfig(&c); /* as the python program; then -I -S */
    c.isolated = 1;                /* implies -E -s -P */
    c.site_import = 0;
    c.parse_argv = 0; /* sys.argv is argv: the command's own options are not python's */
    c.pathconfig_warnings = 0;
    CHECK(PyConfig_SetBytesArgv(&c, argc, argv));
    CHECK(PyConfig_SetBytesString(&c, &c.program_name, OCI_PYTHON));
    CHECK(PyConfig_SetBytesString(&c, &c.executable, OCI_PYTHON));
    CHECK(PyConfig_SetBytesString(&c, &c.prefix, OCI_PREFIX));
    CHECK(PyConfig_SetBytesString(&c, &c.exec_prefix, OCI_EXEC_PREFIX));
    CHECK(PyConfig_SetBytesString(&c, &c.base_prefix, OCI_BASE_PREFIX));
    CHECK(PyConfig_SetBytesString(&c, &c.base_exec_prefix, OCI_BASE_EXEC_PREFIX));
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
        code = Py_CompileString(OCI_MAIN, self, Py_file_input);
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
