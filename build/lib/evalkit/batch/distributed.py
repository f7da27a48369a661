"""Dask execution: the same :func:`evalkit.batch.execute.run_item` on a Dask cluster.

``scheduler=None`` starts a ``LocalCluster`` (``processes=True``, one thread per worker, no
dashboard); otherwise the client connects to ``scheduler`` (e.g. ``tcp://10.0.0.5:8786``).
Workers must have evalkit installed and see the same paths: the output folder and the
warehouse, which every evaluation opens read-only (DuckDB allows many read-only readers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from evalkit.batch.execute import run_item
from evalkit.batch.local import Record, failed_record


def _require_distributed():
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError('--dask needs dask.distributed: pip install "dask[distributed]"') from exc
    return distributed


def run_dask(items: list[dict[str, Any]], batch_dir: str, *, pdf: bool, workers: int, scheduler: str | None,
             on_start: Callable[[dict[str, Any]], None], on_done: Callable[[Record], None],
             tick: Callable[[], None] = lambda: None, on_cluster: Callable[[str], None] = lambda s: None) -> None:
    distributed = _require_distributed()
    cluster = None
    if scheduler:
        client = distributed.Client(scheduler, timeout="30s")
    else:
        cluster = distributed.LocalCluster(n_workers=max(1, int(workers)), threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.WARNING)
        client = distributed.Client(cluster)
    try:
        nthreads = sum(client.nthreads().values()) or 1
        on_cluster(f"{client.scheduler.address} ({len(client.nthreads())} workers, {nthreads} threads)")
        futures = {}
        for it in items:
            fut = client.submit(run_item, it, batch_dir, pdf, pure=False,
                                key=f"evalkit-{it['evaluation_id']}-{(it.get('fingerprint') or 'x')[:12]}")
            futures[fut] = it
        started = 0
        for it in items[:nthreads]:
            on_start(it)
            started += 1
        ac = distributed.as_completed(list(futures), with_results=False)
        for fut in ac:
            it = futures[fut]
            try:
                rec = fut.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker etc.: isolate it
                rec = failed_record(it, f"{type(exc).__name__}: {exc}")
            on_done(rec)
            if started < len(items):
                on_start(items[started])
                started += 1
            tick()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
