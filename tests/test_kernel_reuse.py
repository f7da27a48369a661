"""A batch worker's kept kernel (evalkit.batch.kernels, evalkit.kernel_isolation): an evaluation run after another
one in the same kernel sees exactly what it would see in a fresh kernel.

The fast tests run small notebooks: a hostile one that changes every kind of state a notebook can change, then
a probe that prints that state, compared with the probe run in a fresh kernel. The slow test runs real
evaluations on the small demo world (English then Chinese, different seeds) and compares results.json and
the notebook's outputs with the same evaluation run in a fresh kernel.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from _notebooks import tiny_notebook, without_timings
from evalkit import kernel_start, runner
from evalkit.batch import kernels
from evalkit.batch.kernels import KeptKernel
from evalkit.params import load_params

pytestmark = pytest.mark.skipif(os.name != "posix", reason="IPC transport is POSIX only")
ROOT = Path(__file__).resolve().parents[1]
SAVE = "import json\nopen(results_path, 'w').write(json.dumps({'ok': True}))"

HOSTILE = """
import gc, locale, logging, os, random, sys, tempfile, warnings
import matplotlib, matplotlib.pyplot as plt, numpy as np, pandas as pd
from evalkit.estimators import _cs_blas, _sample
from evalkit.viz import _agg, style
hostile_global = 42
style.use_cjk_font()
matplotlib.rcParams['lines.linewidth'] = 9.0
matplotlib.rcParams['font.sans-serif'] = ['Nothing']
plt.figure(); plt.plot([1, 2])
random.seed(0); np.random.seed(0)
warnings.filterwarnings('ignore')
os.chdir(tempfile.gettempdir()); os.environ['EVALKIT_HOSTILE'] = '1'; os.environ.pop('HOME', None)
sys.path.insert(0, '/nonexistent'); sys.argv.append('--hostile'); os.umask(0o077); sys.setrecursionlimit(4321)
tempfile.tempdir = '/nonexistent'
logging.getLogger().setLevel(logging.DEBUG); logging.getLogger('evalkit').setLevel(logging.ERROR)
pd.set_option('display.max_rows', 3); np.set_printoptions(precision=2); np.seterr(all='raise')
for setter, _ in _cs_blas._find():
    setter(1)
_agg._METRICS[('hostile',)] = (1.0, 2.0, 3.0)
_sample._SHARED = {'panel': 'hostile', 'samples': {}}
"""

PROBE = """
import hashlib, json, locale, logging, os, random, sys, tempfile, warnings
import matplotlib, matplotlib.pyplot as plt, numpy as np, pandas as pd
from evalkit.estimators import _cs_blas, _sample
from evalkit.viz import _agg, style
warnings.warn('probe warning', UserWarning)  # shown again in every evaluation, as in a fresh kernel
mask = os.umask(0); os.umask(mask)
own = {'EVALKIT_KERNEL_DIR', 'EVALKIT_PROGRESS_FILE', 'EVALKIT_CELLS_CACHE', 'JPY_PARENT_PID'}  # differ from kernel to kernel
state = {
    'names': sorted(k for k in globals() if not k.startswith('_')),
    'count': get_ipython().execution_count, 'history': len(In),
    'rc': hashlib.sha256(repr(sorted(matplotlib.rcParams.items())).encode()).hexdigest(),
    'figures': plt.get_fignums(), 'cjk_cache': style.use_cjk_font.cache_info().currsize,
    'filters': [repr(f) for f in warnings.filters],
    'cwd': os.getcwd(), 'env': sorted((k, v) for k, v in os.environ.items() if k not in own),
    'path': sys.path, 'argv': [a for a in sys.argv if not a.endswith('.json')],  # not the connection file 'umask': mask, 'locale': locale.setlocale(locale.LC_ALL, None),
    'recursion': sys.getrecursionlimit(), 'tempdir': tempfile.tempdir,
    'loggers': [logging.getLogger().level, logging.getLogger('evalkit').level],
    'pandas': pd.get_option('display.max_rows'), 'printoptions': repr(np.get_printoptions()),
    'seterr': np.geterr(), 'blas': [g() for _, g in _cs_blas._find()],
    'metrics': len(_agg._METRICS), 'shared': _sample._SHARED,
}
print(json.dumps(state, sort_keys=True, default=str))
print('random', random.random(), np.random.random())
"""


_notebook = tiny_notebook


def _outputs(path: Path) -> list[tuple]:
    """(execution count, outputs) of the notebook's own cells, stdout and stderr apart."""
    nb = nbformat.read(path, as_version=4)
    own = [c for c in nb.cells if c.cell_type == "code"
           and not {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))]
    out = []
    for c in own:
        streams = {n: "".join(o.get("text", "") for o in c.outputs if o.get("name") == n) for n in ("stdout", "stderr")}
        out.append((c.execution_count, streams["stdout"], streams["stderr"]))
    return out


@pytest.fixture
def run(tmp_path, monkeypatch):
    """``run(notebook, keeper)``: run_params of a small notebook (as a batch worker does), its outputs."""
    params = load_params(ROOT / "params" / "two_teams_fights.yaml")
    monkeypatch.setattr(runner, "preflight", lambda _p: None)  # no warehouse needed for these notebooks

    def go(nb: Path, keeper: KeptKernel | None):
        monkeypatch.setattr(runner, "notebook_path", lambda _name: nb)
        res = runner.run_params(params, tmp_path / "out", pdf=False, brief=False, keeper=keeper)
        return _outputs(res.executed)

    return go


def _probe_state(outputs: list[tuple]) -> tuple[dict, list[float], str]:
    count, stdout, stderr = outputs[0]
    state_line, random_line = stdout.splitlines()
    state = json.loads(state_line)
    return state | {"cell": count}, [float(x) for x in random_line.split()[1:]], stderr


def test_a_hostile_notebook_leaves_nothing_for_the_next_one(tmp_path, run):
    hostile = _notebook(tmp_path / "hostile.ipynb", PROBE, HOSTILE, SAVE)
    probe = _notebook(tmp_path / "probe.ipynb", PROBE, SAVE)
    keeper = KeptKernel()
    try:
        first = run(hostile, keeper)
        pid = keeper.kernel.process.pid
        after = run(probe, keeper)
        assert keeper.kernel.process.pid == pid and keeper.started == 1 and keeper.uses == 2  # one kernel
    finally:
        keeper.discard()
    fresh = run(probe, None)  # a fresh kernel per evaluation, as before (and with EVALKIT_BATCH_KERNEL_REUSE=0)
    kept_state, kept_random, kept_err = _probe_state(after)
    fresh_state, fresh_random, fresh_err = _probe_state(fresh)
    assert kept_state == fresh_state
    assert "probe warning" in kept_err and "probe warning" in fresh_err  # the warning registry was forgotten
    assert after[-1] == fresh[-1]
    # the hostile notebook seeded the global generators with 0: the next evaluation does not continue them
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    assert kept_random != [random.random(), np.random.random()]
    assert first[0][0] == kept_state["cell"] == fresh_state["cell"]  # each evaluation's cells count from 1


def test_a_failed_evaluation_replaces_the_kernel(tmp_path, run):
    failing = _notebook(tmp_path / "failing.ipynb", HOSTILE, "raise ValueError('boom')", SAVE)
    probe = _notebook(tmp_path / "probe.ipynb", PROBE, SAVE)
    keeper = KeptKernel()
    try:
        with pytest.raises(runner.RunError, match="ValueError: boom"):
            run(failing, keeper)
        assert keeper.kernel is None  # discarded at once: its folder is gone, its process killed
        after = run(probe, keeper)
        assert keeper.started == 2 and keeper.uses == 1
    finally:
        keeper.discard()
    fresh = run(probe, None)
    assert _probe_state(after)[0] == _probe_state(fresh)[0]


def test_a_kernel_that_died_between_evaluations_is_replaced(tmp_path, run):
    probe = _notebook(tmp_path / "probe.ipynb", PROBE, SAVE)
    keeper = KeptKernel()
    try:
        run(probe, keeper)
        old = keeper.kernel
        old.process.kill()
        old.process.wait()
        run(probe, keeper)
        assert keeper.started == 2 and keeper.kernel is not old and not Path(old.folder).exists()
    finally:
        keeper.discard()
    assert keeper.kernel is None


def test_kernels_are_kept_only_in_local_workers_and_the_variable_turns_it_off(monkeypatch):
    monkeypatch.setattr(kernels, "_kept", None)
    monkeypatch.delenv(kernels.REUSE_ENV, raising=False)
    assert kernels.process_keeper() is None  # Dask workers, `evalkit run`: a fresh kernel per evaluation
    monkeypatch.setenv(kernels.REUSE_ENV, "0")
    kernels.keep_kernels_in_this_process()
    assert kernels.process_keeper() is None
    monkeypatch.setenv(kernels.REUSE_ENV, "1")
    kernels.keep_kernels_in_this_process()
    assert isinstance(kernels.process_keeper(), KeptKernel)


def test_the_audit_finds_evalkits_functools_caches():
    from evalkit import kernel_isolation
    from evalkit.estimators import _cs_attgt, specs
    from evalkit.viz import style

    found = kernel_isolation.evalkit_caches()
    for fn in (style.use_cjk_font, specs._swallowed, _cs_attgt.fmt):
        assert fn in found


def test_kept_kernels_output_goes_to_the_log_of_the_evaluation_that_made_it(tmp_path, run, capfd):
    loud = _notebook(tmp_path / "loud.ipynb", "import os\nos.write(2, b'from the kernel itself\\n')", SAVE)
    keeper = KeptKernel()
    try:
        run(loud, keeper)
        assert "from the kernel itself" in capfd.readouterr().err  # flushed when the evaluation ended
    finally:
        keeper.discard()
    assert keeper.kernel is None and kernel_start._waiting is None


# ---------------------------------------------------------------------------- real evaluations (slow)
_without_timings = without_timings


def _shown(path: Path) -> list[list]:
    """Every cell's outputs as shown: text, HTML, PNG and streams (execution counts included)."""
    nb = nbformat.read(path, as_version=4)
    cells = []
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        outs = [(o.get("output_type"), o.get("name"), o.get("text"),
                 {m: o["data"][m] for m in ("text/plain", "text/html", "image/png") if m in o.get("data", {})})
                for o in c.outputs]
        cells.append([c.execution_count, outs])
    return cells


@pytest.mark.slow
def test_an_evaluation_after_another_in_a_kept_kernel_equals_it_in_a_fresh_kernel(demo_warehouse, tmp_path,
                                                                                monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # as in a batch worker
    common = {"estimators": ["naive_yoy", "did2x2", "twfe", "cs"], "warehouse": str(demo_warehouse)}
    first = load_params(ROOT / "params" / "two_teams_fights_en.yaml").model_copy(
        update={**common, "evaluation_id": "first_en", "seed": 1, "lang": "en"})
    second = load_params(ROOT / "params" / "village_auxiliary_disputes.yaml").model_copy(
        update={**common, "evaluation_id": "second_zh", "seed": 2, "lang": "zh"})
    keeper = KeptKernel()
    try:
        runner.run_params(first, tmp_path / "kept", pdf=False, brief=False, keeper=keeper)
        kept = runner.run_params(second, tmp_path / "kept", pdf=False, brief=False, keeper=keeper)
        assert keeper.started == 1 and keeper.uses == 2
    finally:
        keeper.discard()
    fresh = runner.run_params(second, tmp_path / "fresh", pdf=False, brief=False)
    a = _without_timings(json.loads(kept.results.read_text(encoding="utf-8")))
    b = _without_timings(json.loads(fresh.results.read_text(encoding="utf-8")))
    assert a == b
    assert _shown(kept.executed) == _shown(fresh.executed)
