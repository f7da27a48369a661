"""Inside a notebook kernel kept for several evaluations: take the state after start, put it back between them.

A worker of `evalkit batch` or `evalkit run --jobs N` keeps one kernel (:mod:`evalkit.batch.kernels`). The kernel takes a :func:`snapshot` once, after
its start and pre-imports and before it serves its first request (:mod:`evalkit.kernel_launcher`, with
``EVALKIT_KERNEL_ISOLATE=1``); between two evaluations the worker runs :func:`restore` in it (a silent
request, no history). What :func:`restore` puts back, so that an evaluation sees what a fresh kernel would
show it (``tests/test_kernel_reuse.py`` proves it on hostile notebooks and on real evaluations):

* IPython: a new user namespace and session (``InteractiveShell.reset(new_session=True)``: the
  namespace, ``In``/``Out``, the output cache, the execution counter back to 1);
* matplotlib: every figure closed, ``rcParams`` and the unit converters as at the snapshot;
* random state: Python's ``random`` and NumPy's global ``RandomState`` re-seeded from the OS, as a new
  process seeds them (evaluations draw from their own seeded generators; nothing should use these);
* ``warnings``: the filters as at the snapshot, the "once" registries forgotten (a warning shown in one
  evaluation is shown again in the next, as in a fresh kernel);
* the process: working folder, environment variables, ``sys.path``, ``sys.argv``, umask, locale,
  recursion limit, ``tempfile.tempdir``; every logger's level and handlers (one made since the
  snapshot as ``getLogger`` makes it); NumPy's print options and floating-point error handling; pandas options;
* OpenBLAS thread counts as at the snapshot (``evalkit.estimators._cs_blas``);
* evalkit's module-level state (the audit of docs/batch.md): every ``functools`` cache of an evalkit module
  cleared (``viz.style.use_cjk_font`` sets rcParams the first time it runs, so it must run again),
  the text-metrics cache of ``viz._agg``, the sample scope of ``estimators._sample``, the empty-estimates
  template of ``estimators._cs_infer``, the BLAS functions found by ``estimators._cs_blas``;
* then a garbage collection, so the previous evaluation's arrays are freed before the next one starts;
  what survives it (modules, imports) is frozen (``gc.freeze``), as the start's objects are at the snapshot,
  so that collections skip it: a full collection over evalkit's imports costs 0.5–1.6 s.

Not reset (same in every evaluation, or outside Python): modules already imported stay imported (their
import-time work is not repeated: that is the saving), DuckDB connections are opened and closed by each
evaluation, the CS bootstrap's helper thread pool is kept. A kernel whose evaluation failed is never
reused (:mod:`evalkit.batch.kernels` starts a fresh one).
"""

from __future__ import annotations

import copy
import gc
import locale
import logging
import os
import random
import sys
import tempfile
import warnings
from typing import Any

from evalkit.kernel_start import ISOLATE_ENV

#: environment variable: the kernel takes a snapshot after its pre-imports (set by kernel_start.start(isolate=True))
#: what a worker sends to the kept kernel between two evaluations
RESTORE_CODE = "__import__('evalkit.kernel_isolation', fromlist=['restore']).restore()"

_BASE: dict[str, Any] | None = None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pandas_options() -> dict[str, Any]:
    pd = sys.modules.get("pandas")
    if pd is None:
        return {}
    from pandas._config import config

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key in list(config._registered_options):  # noqa: SLF001 - every option, deprecated ones included
            try:
                out[key] = copy.deepcopy(pd.get_option(key))
            except Exception:  # noqa: BLE001, S112 - an option that cannot be read is left alone
                continue
    return out


def _blas_threads() -> list[int]:
    from evalkit.estimators import _cs_blas

    before = _cs_blas._funcs  # noqa: SLF001 - the one BLAS finder of evalkit
    try:
        return [int(get()) for _, get in _cs_blas._find()]  # noqa: SLF001
    finally:  # found again at first use, as in a fresh kernel (scipy's OpenBLAS may load later)
        _cs_blas._funcs = before  # noqa: SLF001


def snapshot() -> None:
    """Record the kernel's state now (after start and pre-imports, before the first evaluation; the launcher
    calls it inside :func:`evalkit.kernel_start.collector_paused`, which freezes what exists at its end)."""
    global _BASE
    import matplotlib
    import matplotlib.pyplot  # noqa: F401 - the backend chosen now, as every evaluation's charts would
    import matplotlib.units
    import numpy as np

    loggers = {name: (lg.level, list(lg.handlers), lg.propagate, lg.disabled)
               for name, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    _BASE = {
        "cwd": os.getcwd(), "environ": dict(os.environ), "path": list(sys.path), "argv": list(sys.argv),
        "umask": _umask(), "locale": locale.setlocale(locale.LC_ALL, None),
        "recursion": sys.getrecursionlimit(), "tempdir": tempfile.tempdir,
        "warnings": list(warnings.filters),
        "root": (logging.root.level, list(logging.root.handlers)), "loggers": loggers,
        "disable": logging.root.manager.disable,
        "rc": copy.deepcopy(dict(matplotlib.rcParams)), "units": dict(matplotlib.units.registry),
        "printoptions": np.get_printoptions(), "seterr": np.geterr(),
        "pandas": _pandas_options(), "blas": _blas_threads(),
    }
    # no gc.freeze() here: the launcher takes the snapshot with the collector paused and freezes everything
    # made so far right after it (kernel_start.collector_paused), so collections (IPython's reset runs one)
    # skip the start's and the imports' objects (a full collection over them takes 0.5–1.6 s)


#: evalkit's module-level state beside its functools caches: (module, attribute, value put back)
MODULE_STATE: tuple[tuple[str, str, Any], ...] = (
    ("evalkit.estimators._sample", "_SHARED", None),      # the panel whose samples are shared (scoped)
    ("evalkit.estimators._cs_blas", "_funcs", None),      # BLAS libraries found in this process
)
#: module-level containers emptied in place (imported names elsewhere keep pointing at them)
MODULE_CONTAINERS: tuple[tuple[str, str], ...] = (
    ("evalkit.viz._agg", "_METRICS"),                  # text metrics keyed on text, font, dpi and font rcParams
    ("evalkit.estimators._cs_infer", "_CANONICAL"),    # the empty estimates frame used as a column template
)


def evalkit_caches() -> list[Any]:
    """Every ``functools`` cache defined in an imported evalkit module (``lru_cache``, ``cache``)."""
    found = []
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name == "evalkit" or name.startswith("evalkit.")):
            continue
        for obj in list(vars(mod).values()):
            if callable(getattr(obj, "cache_clear", None)) and getattr(obj, "__module__", None) == name:
                found.append(obj)
    return found


def _restore_evalkit() -> None:
    for fn in evalkit_caches():
        fn.cache_clear()
    for modname, attr, value in MODULE_STATE:
        mod = sys.modules.get(modname)
        if mod is not None:
            setattr(mod, attr, value)
    for modname, attr in MODULE_CONTAINERS:
        mod = sys.modules.get(modname)
        if mod is not None:
            getattr(mod, attr).clear()


def _restore_process(base: dict[str, Any]) -> None:
    os.chdir(base["cwd"])
    if dict(os.environ) != base["environ"]:
        os.environ.clear()
        os.environ.update(base["environ"])
    sys.path[:] = base["path"]
    sys.argv[:] = base["argv"]
    os.umask(base["umask"])
    if locale.setlocale(locale.LC_ALL, None) != base["locale"]:
        locale.setlocale(locale.LC_ALL, base["locale"])
    sys.setrecursionlimit(base["recursion"])
    tempfile.tempdir = base["tempdir"]
    warnings.filters[:] = base["warnings"]
    warnings.onceregistry.clear()
    warnings._filters_mutated()  # noqa: SLF001 - every module's __warningregistry__ is stale from now on
    level, handlers = base["root"]
    logging.root.setLevel(level)
    logging.root.handlers[:] = handlers
    logging.disable(base["disable"])
    for name, lg in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(lg, logging.Logger):  # a logger made since the snapshot: as getLogger makes it
            lvl, hs, propagate, disabled = base["loggers"].get(name, (logging.NOTSET, [], True, False))
            lg.setLevel(lvl)
            lg.handlers[:] = hs
            lg.propagate, lg.disabled = propagate, disabled


def _restore_libraries(base: dict[str, Any]) -> None:
    import matplotlib
    import matplotlib.pyplot as plt
    import matplotlib.units
    import numpy as np

    plt.close("all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matplotlib.rcParams._update_raw(base["rc"])  # noqa: SLF001 - validated values, taken as they were
    matplotlib.units.registry.clear()
    matplotlib.units.registry.update(base["units"])
    np.set_printoptions(**base["printoptions"])
    np.seterr(**base["seterr"])
    random.seed()
    np.random.seed()  # noqa: NPY002 - the legacy global state, as a new process seeds it
    if base["pandas"]:
        import pandas as pd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for key, value in base["pandas"].items():
                try:
                    if pd.get_option(key) != value:
                        pd.set_option(key, value)
                except Exception:  # noqa: BLE001, S112 - read-only or removed option
                    continue
    from evalkit.estimators import _cs_blas

    funcs = _cs_blas._find()  # noqa: SLF001
    for i, (setter, _getter) in enumerate(funcs):
        if base["blas"]:
            setter(base["blas"][min(i, len(base["blas"]) - 1)])


def restore() -> None:
    """Put the kernel back in its :func:`snapshot` state (see the module docstring); raises if there is none."""
    if _BASE is None:
        raise RuntimeError("this kernel took no snapshot (started without EVALKIT_KERNEL_ISOLATE=1)")
    from IPython import get_ipython

    _restore_process(_BASE)
    _restore_libraries(_BASE)
    _restore_evalkit()
    shell = get_ipython()
    if shell is not None:  # last: its output-cache flush ends with the collection that frees the figures
        shell.reset(new_session=True)  # namespace, In/Out, output cache; execution_count = 1
    else:
        gc.collect()
    gc.freeze()  # what survived is kept for good (modules, imports): later collections skip it


def take_snapshot_if_asked() -> bool:
    """:func:`snapshot` when ``EVALKIT_KERNEL_ISOLATE=1`` (the variable is removed first: the notebook's own
    subprocesses do not inherit it, and the snapshot's environment is the one a fresh kernel has)."""
    if os.environ.pop(ISOLATE_ENV, "") != "1":
        return False
    snapshot()
    return True
