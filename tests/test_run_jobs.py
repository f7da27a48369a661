"""`evalkit run --jobs N` workers keep one notebook kernel each (evalkit.batch.kernels), as batch workers do.

The workers are the ones `evalkit run` makes (:func:`evalkit.runner.job_pool`) and run what it submits
(:func:`evalkit.runner.run_file_job`). Small notebooks prove the kernel is kept across files, that a failed
file is reported alone and the next file gets a fresh kernel, and that the opt-out works; the slow test runs
two real evaluations one after the other in one worker (PDF briefs included) and compares their results.json
with each run alone in a fresh kernel.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from _notebooks import tiny_notebook, without_timings
from evalkit import runner
from evalkit.batch import kernels

pytestmark = pytest.mark.skipif(os.name != "posix", reason="IPC transport is POSIX only")
ROOT = Path(__file__).resolve().parents[1]
SAVE = "import json\nopen(results_path, 'w').write(json.dumps({'ok': True}))"
SHOW = ("from IPython.display import display\nfrom evalkit.brief_marker import BRIEF_MIME\n"  # the brief's marker
        "display({BRIEF_MIME: {'evaluation_id': 'tiny', 'lang': 'en', 'synthetic': True, 'title': 'tiny',"
        " 'reform': 'x'}, 'text/plain': 'evalkit brief tiny'}, raw=True)")
REUSE_VARS = (kernels.REUSE_ENV, kernels.OLD_REUSE_ENV)


# --- run inside the worker process (submitted to the pool: module-level, picklable)
def _kernel_counts() -> tuple[bool, int, int]:
    """(a keeper exists and holds a kernel, kernels it started, evaluations in its current kernel)."""
    k = kernels.process_keeper()
    return (k is not None and k.kernel is not None, k.started, k.uses) if k is not None else (False, 0, 0)


def _use_notebook(nb: str) -> None:
    """From now on this worker runs notebook ``nb`` for every params file, without the warehouse preflight."""
    runner.notebook_path = lambda _name: Path(nb)
    runner.preflight = lambda _params: None


@pytest.fixture
def clean_env(monkeypatch):
    for var in REUSE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return monkeypatch


@pytest.mark.parametrize("off", [None, *REUSE_VARS])
def test_the_run_jobs_worker_initializer_sets_up_a_keeper_unless_opted_out(clean_env, off):
    if off:
        clean_env.setenv(off, "0")
    with runner.job_pool(1, 2) as pool:
        keeper = pool.submit(kernels.process_keeper).result(timeout=120)
    assert isinstance(keeper, kernels.KeptKernel) if off is None else keeper is None


def test_run_jobs_files_share_a_kept_kernel_and_a_failure_stays_its_files(clean_env, tmp_path):
    ok_nb = tiny_notebook(tmp_path / "ok.ipynb", SHOW, SAVE)
    failing_nb = tiny_notebook(tmp_path / "failing.ipynb", "raise ValueError('boom')", SAVE)
    params = str(ROOT / "params" / "two_teams_fights.yaml")
    out = str(tmp_path / "out")

    def run(pool) -> tuple[bool, str]:
        return pool.submit(runner.run_file_job, params, out, None, None, False, None).result(timeout=300)

    with runner.job_pool(1, 1) as pool:
        pool.submit(_use_notebook, str(ok_nb)).result(timeout=120)
        assert run(pool)[0] and pool.submit(_kernel_counts).result() == (True, 1, 1)
        ok, brief = run(pool)
        assert ok and Path(brief).name == "brief.html" and Path(brief).is_file()  # the brief is still exported
        assert pool.submit(_kernel_counts).result() == (True, 1, 2)  # the second file ran in the same kernel
        pool.submit(_use_notebook, str(failing_nb)).result()
        ok, error = run(pool)
        assert not ok and "ValueError: boom" in error  # reported for this file, as a one-line error
        assert pool.submit(_kernel_counts).result() == (False, 1, 3)  # its kernel was discarded
        pool.submit(_use_notebook, str(ok_nb)).result()
        assert run(pool)[0]
        assert pool.submit(_kernel_counts).result() == (True, 2, 1)  # the next file: a fresh kernel


# ---------------------------------------------------------------------------- real evaluations (slow)
_without_timings = without_timings


def _results(out: Path, evaluation_id: str) -> dict:
    return _without_timings(json.loads((out / evaluation_id / "results.json").read_text(encoding="utf-8")))


@pytest.mark.slow
def test_two_files_in_one_run_jobs_worker_equal_each_alone_in_a_fresh_kernel(clean_env, demo_warehouse,
                                                                             tmp_path):
    import yaml

    from evalkit.params import load_params

    common = {"estimators": ["naive_yoy", "did2x2", "twfe", "cs"]}
    files = []
    for name, eid, seed, lang in (("two_teams_fights_en", "first_en", 1, "en"),
                                  ("village_auxiliary_disputes", "second_zh", 2, "zh")):
        p = load_params(ROOT / "params" / f"{name}.yaml").model_copy(
            update={**common, "evaluation_id": eid, "seed": seed, "lang": lang})
        path = tmp_path / f"{eid}.yaml"
        path.write_text(yaml.safe_dump(p.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
        files.append(path)

    def run(pool, path: Path, out: Path, pdf: bool) -> str:
        ok, text = pool.submit(runner.run_file_job, str(path), str(out), str(demo_warehouse), None, pdf,
                               None).result(timeout=900)
        assert ok, text
        return text

    kept = tmp_path / "kept"
    with runner.job_pool(1, 1) as pool:  # one worker, both files: the second runs in the first one's kernel
        briefs = [run(pool, f, kept, True) for f in files]
        assert pool.submit(_kernel_counts).result() == (True, 1, 2)
    assert all(Path(b).name == "brief.pdf" and Path(b).stat().st_size > 0 for b in briefs)
    assert all((kept / eid / "brief.html").is_file() for eid in ("first_en", "second_zh"))

    fresh = tmp_path / "fresh"
    clean_env.setenv(kernels.REUSE_ENV, "0")
    with runner.job_pool(1, 1) as pool:  # each file alone in a fresh kernel
        for f in files:
            run(pool, f, fresh, False)
        assert pool.submit(_kernel_counts).result() == (False, 0, 0)
    for eid in ("first_en", "second_zh"):
        assert _results(kept, eid) == _results(fresh, eid)
