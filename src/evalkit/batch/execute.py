"""Run one planned evaluation inside a worker process (local pool or Dask worker).

``outputs/<batch>/<evaluation_id>/`` gets the usual ``executed.ipynb``, ``results.json``,
``brief.html`` (and ``brief.pdf``), then — atomically and LAST — ``done.json``: the
fingerprint, SHA-256 of every output file and the timings. An evaluation is complete only
when ``done.json`` exists, its fingerprint matches and every listed file has that hash.
Before an evaluation (re)runs, its old outputs and stale temp files are removed, so a
killed batch never leaves a mix of old and new files behind a valid ``done.json``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evalkit.batch.plan import BatchItem, sha256_file
from evalkit.fileperm import public_mode
from evalkit.progress import write_status

DONE = "done.json"
OUTPUT_FILES = ("executed.ipynb", "results.json", "brief.html", "brief.pdf")
STALE = (DONE, "failed.ipynb", "error.json", *OUTPUT_FILES)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        public_mode(fd)  # mkstemp makes 0600; outputs follow the umask
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_done(out_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out_dir / DONE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_complete(out_dir: Path, fingerprint: str | None, *, pdf: bool) -> dict[str, Any] | None:
    """The ``done.json`` manifest if the outputs are complete and current, else ``None``."""
    done = read_done(out_dir)
    if not done or fingerprint is None or done.get("fingerprint") != fingerprint:
        return None
    files = done.get("files", {})
    if pdf and "brief.pdf" not in files:
        return None  # done without PDF, now asked for one
    for name, digest in files.items():
        f = out_dir / name
        if not f.is_file() or sha256_file(f) != digest:
            return None
    return done


def clean_outputs(out_dir: Path) -> None:
    """Remove old outputs and temp files left by a killed run (dot-prefixed ``mkstemp`` files)."""
    if not out_dir.is_dir():
        return
    for name in STALE:
        (out_dir / name).unlink(missing_ok=True)
    for f in out_dir.iterdir():
        if f.name.startswith(".") and f.is_file():
            f.unlink(missing_ok=True)


def _iso(s: str | None) -> datetime | None:
    if not s:
        return None
    try:
        return datetime.fromisoformat(str(s).replace("Z", "+00:00"))
    except ValueError:
        return None


def papermill_timings(nb_path: Path) -> dict[str, float]:
    """Kernel start (notebook start → first cell) and cell execution time from papermill metadata."""
    import nbformat

    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception:  # noqa: BLE001 - timings are best effort
        return {}
    meta = nb.metadata.get("papermill", {})
    start = _iso(meta.get("start_time"))
    cells = [c.metadata.get("papermill", {}) for c in nb.cells]
    starts = [d for d in (_iso(c.get("start_time")) for c in cells) if d]
    ends = [d for d in (_iso(c.get("end_time")) for c in cells) if d]
    out: dict[str, float] = {}
    if start and starts:
        out["seconds_kernel_start"] = (min(starts) - start).total_seconds()
    if starts and ends:
        out["seconds_execute"] = (max(ends) - min(starts)).total_seconds()
    end = _iso(meta.get("end_time"))
    if end and ends:
        out["seconds_kernel_shutdown"] = max(0.0, (end - max(ends)).total_seconds())
    return out


class _LogHandler(logging.FileHandler):
    pass


def _open_log(path: Path) -> tuple[logging.Logger, _LogHandler]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = _LogHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    for noisy in ("traitlets", "asyncio", "distributed", "matplotlib", "fontTools"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger("evalkit.batch"), handler


def _redirect_std(path: Path) -> tuple[int, int] | None:
    """Send this process's stdout/stderr (and so the kernel's and Chromium's) to the log file."""
    try:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        saved = (os.dup(1), os.dup(2))
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        return saved
    except (OSError, AttributeError, ValueError):
        return None


def _restore_std(saved: tuple[int, int] | None) -> None:
    if saved is None:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    for target, fd in zip((1, 2), saved, strict=True):
        os.dup2(fd, target)
        os.close(fd)


def _close_log(handler: _LogHandler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()


def _notebook_errors(nb_path: Path) -> str:
    """The traceback(s) of a failed notebook, ANSI colours stripped (for the log)."""
    import re

    import nbformat

    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception:  # noqa: BLE001
        return ""
    lines = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                lines.append("\n".join(out.get("traceback", [])))
            elif out.get("output_type") == "stream" and out.get("name") == "stderr":
                lines.append(out.get("text", ""))
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(lines))


def step_file(batch_dir: str | Path, evaluation_id: str) -> Path:
    """Where a worker writes the step its evaluation is in, for the batch display (removed when done)."""
    return Path(batch_dir) / "logs" / f"{evaluation_id}.step"


def run_item(item: dict[str, Any], batch_dir: str, pdf: bool = True,
             next_notebook: str | None = None) -> dict[str, Any]:
    """Run one evaluation; never raises for evaluation errors (they are returned as ``failed``).

    ``item`` is :meth:`BatchItem.to_dict` (plain data, so it pickles to any worker). ``next_notebook``:
    the notebook this worker probably runs next; its kernel starts (and imports evalkit) while this
    evaluation's brief exports (:mod:`evalkit.kernel_start`: a kernel that does not fit is replaced).
    """
    from evalkit.export import export_brief

    it = BatchItem.from_dict(item)
    root = Path(batch_dir)
    out_dir = root / it.evaluation_id
    log_path = root / "logs" / f"{it.evaluation_id}.log"
    t0 = time.perf_counter()
    record: dict[str, Any] = {"evaluation_id": it.evaluation_id, "source": it.source, "status": "failed",
                              "error": None, "partial_notebook": None, "log": str(log_path),
                              "fingerprint": it.fingerprint, "started_at": now(), "worker_pid": os.getpid()}
    log, handler = _open_log(log_path)
    saved = _redirect_std(log_path)
    steps = step_file(root, it.evaluation_id)

    def on_step(step: str) -> None:
        write_status(steps, step)

    try:
        log.info("evaluation %s from %s (pid %s)", it.evaluation_id, it.source, os.getpid())
        clean_outputs(out_dir)
        if not it.ok:
            raise _Invalid(it.error or "invalid params")
        log.info("fingerprint %s %s", it.fingerprint, json.dumps(it.components))
        params = it.evaluation_params()
        t_nb = time.perf_counter()
        try:
            res = _run_notebook(params, root, log, record, on_step, next_notebook)
        finally:
            record["seconds_notebook"] = time.perf_counter() - t_nb
            for name in ("executed.ipynb", "failed.ipynb"):
                if (out_dir / name).is_file():
                    record.update(papermill_timings(out_dir / name))
        log.info("notebook done in %.1fs (kernel start %.1fs, cells %.1fs, kernel shutdown %.1fs)",
                 record["seconds_notebook"], record.get("seconds_kernel_start", float("nan")),
                 record.get("seconds_execute", float("nan")), record.get("seconds_kernel_shutdown", float("nan")))
        results = json.loads(res.results.read_text(encoding="utf-8"))
        record["seconds_estimate"] = results.get("seconds")
        record["synthetic"] = bool(results.get("synthetic"))
        t_ex = time.perf_counter()
        export_brief(res.executed, out_dir, pdf=pdf, on_step=on_step)
        record["seconds_export"] = time.perf_counter() - t_ex
        log.info("brief exported in %.1fs (pdf=%s)", record["seconds_export"], pdf)
        record["seconds_total"] = time.perf_counter() - t0
        files = [n for n in OUTPUT_FILES if (out_dir / n).is_file() and (n != "brief.pdf" or pdf)]
        record.update(status="ok", finished_at=now())
        manifest = {**record, "components": it.components, "pdf": pdf,
                    "files": {n: sha256_file(out_dir / n) for n in files}}
        atomic_write_text(out_dir / DONE, json.dumps(manifest, ensure_ascii=False, indent=2))
        log.info("done in %.1fs", record["seconds_total"])
    except Exception as exc:  # noqa: BLE001 - failure isolation: record and go on
        record["error"] = str(exc) if isinstance(exc, _Invalid) else f"{type(exc).__name__}: {exc}"
        record["seconds_total"] = time.perf_counter() - t0
        record["finished_at"] = now()
        failed = out_dir / "failed.ipynb"
        if failed.is_file():
            record["partial_notebook"] = str(failed)
            log.error("notebook output:\n%s", _notebook_errors(failed))
        if isinstance(exc, _Invalid):
            log.error("invalid params:\n%s", exc)
        else:
            log.error("failed: %s\n%s", record["error"], traceback.format_exc())
        try:
            atomic_write_text(out_dir / "error.json", json.dumps(record, ensure_ascii=False, indent=2))
        except OSError:
            pass
    finally:
        steps.unlink(missing_ok=True)
        _restore_std(saved)
        _close_log(handler)
    return record


class _Invalid(Exception):
    pass


#: attempts for failures outside the notebook's own cells (kernel died or timed out at start);
#: cell errors never retry.
KERNEL_ATTEMPTS = int(os.environ.get("EVALKIT_KERNEL_ATTEMPTS", "3"))


def _run_notebook(params, root: Path, log: logging.Logger, record: dict[str, Any], on_step=None,
                  next_notebook: str | None = None):
    """:func:`run_params` with a retry for infrastructure failures (logged, counted in ``record``)."""
    from evalkit.batch.kernels import process_keeper
    from evalkit.runner import RunError, run_params

    keeper = process_keeper()  # a local worker's kept kernel (None: a fresh kernel per evaluation)
    for attempt in range(1, KERNEL_ATTEMPTS + 1):
        try:
            # the kernel is killed after its last cell (results.json is written by then): nbclient's graceful
            # shutdown cost 1–3 s per evaluation (runner.SHUTDOWN_ENV, docs/batch.md)
            res = run_params(params, root, pdf=False, brief=False, on_step=on_step, next_notebook=next_notebook,
                             keeper=keeper)
            if keeper is not None:  # 1 = a kernel started for this evaluation, k = its k-th evaluation
                record["kernel_uses"] = keeper.uses
            return res
        except RunError:
            raise  # the notebook itself failed (or preflight): deterministic, do not retry
        except Exception as exc:  # noqa: BLE001 - kernel/infrastructure failure
            record["kernel_retries"] = attempt
            if attempt >= KERNEL_ATTEMPTS:
                raise
            log.warning("kernel attempt %d/%d failed (%s: %s); retrying", attempt, KERNEL_ATTEMPTS,
                        type(exc).__name__, exc)
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")
