"""Portfolio of a batch: ``summary.parquet`` and the portfolio brief (HTML + PDF).

``summary.parquet`` has one row per evaluation × outcome × estimator (a failed evaluation
has one row with ``status = 'failed'`` and its error). The brief shows a forest plot of the
headline effect of every reform × outcome, a ranked table, the failures and — when any
evaluation ran on synthetic data — the synthetic-data notice on every page.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import html
import io
import json
import math
import os
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from evalkit.batch.execute import atomic_write_text, now
from evalkit.batch.plan import BatchItem
from evalkit.fileperm import public_mode

TIMING_COLUMNS = ("seconds_kernel_start", "seconds_execute", "seconds_kernel_shutdown", "seconds_estimate",
                  "seconds_notebook", "seconds_export", "seconds_total")
VERDICT_ORDER = {"strong": 0, "limited": 1, "pretrend_doubtful": 2, "no_effect": 3, "no_data": 4}
VERDICT_COLORS = {"strong": "#c0392b", "limited": "#e67e22", "pretrend_doubtful": "#8e44ad", "no_effect": "#7f8c8d",
                  "no_data": "#bdc3c7"}

TEXT = {
    "zh": {"title": "改革评估组合简报", "batch": "批次", "generated": "生成时间", "n": "评估数",
           "ok": "成功", "failed": "失败", "forest_h": "各改革 × 指标的总体效果（相对基线，%）",
           "forest_x": "效果（相对基线 %，95% 置信区间）", "ranked_h": "效果排序",
           "rank": "序号", "evaluation": "评估", "reform": "改革", "outcome": "指标", "region": "范围",
           "estimator": "方法", "effect": "效果", "ci": "95% 置信区间", "p": "p 值", "verdict": "证据评级",
           "units": "实施/对照", "failures_h": "失败的评估", "error": "错误", "log": "日志",
           "no_failures": "全部评估均已完成。", "none": "（无成功的评估）",
           "ranked_note": "按证据评级、再按 p 值排序；效果为相对实施所基线均值的百分比。"},
    "en": {"title": "Reform evaluation portfolio", "batch": "Batch", "generated": "Generated", "n": "Evaluations",
           "ok": "succeeded", "failed": "failed", "forest_h": "Overall effect of every reform × outcome (% of baseline)",
           "forest_x": "Effect (% of baseline, 95% CI)", "ranked_h": "Ranked effects",
           "rank": "#", "evaluation": "Evaluation", "reform": "Reform", "outcome": "Outcome", "region": "Region",
           "estimator": "Estimator", "effect": "Effect", "ci": "95% CI", "p": "p", "verdict": "Verdict",
           "units": "treated/control", "failures_h": "Failed evaluations", "error": "Error", "log": "Log",
           "no_failures": "Every evaluation completed.", "none": "(no successful evaluation)",
           "ranked_note": "Ordered by verdict, then p-value; effects in percent of the adopters' baseline mean."},
}


def _f(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def summary_rows(batch: str, item: BatchItem, record: dict[str, Any], out_dir: Path) -> list[dict[str, Any]]:
    """Rows of one evaluation (see the module docstring)."""
    from evalkit.registry import REFORMS
    from evalkit.results import EstimationResult
    from evalkit.verdict import decide

    params = item.params or {}
    reform = params.get("reform")
    base = {"batch": batch, "evaluation_id": item.evaluation_id, "source": item.source,
            "status": record.get("status", "pending"), "skipped": bool(record.get("skipped")),
            "error": record.get("error"), "reform": reform,
            "reform_zh": REFORMS[reform].zh if reform in REFORMS else None,
            "region": json.dumps((params.get("region") or {}), ensure_ascii=False, sort_keys=True)
            if params else None, "lang": params.get("lang"),
            "fingerprint": item.fingerprint, "synthetic": record.get("synthetic")}
    base |= {c: _f(record.get(c)) for c in TIMING_COLUMNS}
    results_path = out_dir / "results.json"
    if record.get("status") != "ok" or not results_path.is_file():
        return [base | {"outcome": None, "estimator": None, "is_headline": False}]
    res = json.loads(results_path.read_text(encoding="utf-8"))
    base["synthetic"] = bool(res.get("synthetic"))
    headline_name = res.get("params", {}).get("headline")
    alpha = float(res.get("params", {}).get("alpha", 0.05))
    rows = []
    for outcome, by_est in res.get("results", {}).items():
        hl = (res.get("headline") or {}).get(outcome) or {}
        for est, data in by_est.items():
            # estimates and meta only: its tables and vcov (most of results.json) are not needed for the rows
            r = EstimationResult.from_dict({k: v for k, v in data.items() if k not in ("tables", "vcov")})
            row = base | {"outcome": outcome, "estimator": est, "is_headline": est == headline_name}
            if r.rows("overall").empty:
                rows.append(row)
                continue
            o = r.overall
            e, lo, hi, p = (_f(o.get(k)) for k in ("estimate", "ci_low", "ci_high", "p_value"))
            pre = (r.meta.get("pretrend") or {}).get("p_value")
            if est == headline_name and hl:
                verdict, pre = hl.get("verdict"), hl.get("pretrend_p")
            else:
                verdict = decide(p, _f(pre) if pre is not None else None, alpha=alpha).code
            row |= {"estimate": e, "std_error": _f(o.get("std_error")), "ci_low": lo, "ci_high": hi,
                    "p_value": p, "pct": r.percent(e), "pct_ci_low": r.percent(lo), "pct_ci_high": r.percent(hi),
                    "verdict": verdict, "pretrend_p": _f(pre), "n_treated": r.meta.get("n_treated"),
                    "n_control": r.meta.get("n_control"), "n_obs": r.meta.get("n_obs")}
            rows.append(row)
    return rows


def build_summary(batch: str, items: list[BatchItem], records: dict[str, dict[str, Any]],
                  batch_dir: Path, ready: dict[str, list[dict[str, Any]]] | None = None) -> pd.DataFrame:
    """The summary frame; ``ready``: :func:`summary_rows` of evaluations already read (by evaluation id),
    taken as they are (``run_batch`` reads each evaluation as it finishes, while the others run)."""
    rows: list[dict[str, Any]] = []
    for it in items:
        got = (ready or {}).get(it.evaluation_id)
        rows.extend(got if got is not None else
                    summary_rows(batch, it, records.get(it.evaluation_id, {}), batch_dir / it.evaluation_id))
    df = pd.DataFrame(rows)
    cols = ["batch", "evaluation_id", "source", "status", "skipped", "error", "reform", "reform_zh", "region",
            "lang", "outcome", "estimator", "is_headline", "estimate", "std_error", "ci_low", "ci_high", "p_value",
            "pct", "pct_ci_low", "pct_ci_high", "verdict", "pretrend_p", "n_treated", "n_control", "n_obs",
            "synthetic", "fingerprint", *TIMING_COLUMNS]
    for c in cols:
        if c not in df:
            df[c] = None
    df = df[cols]
    for c in ("estimate", "std_error", "ci_low", "ci_high", "p_value", "pct", "pct_ci_low", "pct_ci_high",
              "pretrend_p", *TIMING_COLUMNS):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    for c in ("n_treated", "n_control", "n_obs"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    df["synthetic"] = df["synthetic"].astype("boolean")
    return df


# no script runs in the portfolio page, in a browser or in Chromium's PDF route (as in the brief template)
CSP_META = ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
            'style-src \'unsafe-inline\'; font-src data:">')


def write_parquet_atomic(df: pd.DataFrame, path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        public_mode(tmp)  # mkstemp makes 0600; outputs follow the umask
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _headlines(df: pd.DataFrame) -> pd.DataFrame:
    h = df[(df["status"] == "ok") & df["is_headline"].fillna(False).astype(bool) & df["estimate"].notna()].copy()
    h["_v"] = h["verdict"].map(VERDICT_ORDER).fillna(9)
    return h.sort_values(["_v", "p_value", "evaluation_id", "outcome"]).reset_index(drop=True)


def _region_label(region_json: str | None) -> str:
    if not region_json:
        return ""
    d = {k: v for k, v in json.loads(region_json).items() if v not in (None, [], "")}
    return " · ".join(", ".join(v) if isinstance(v, list) else str(v) for v in d.values()) or "—"


def forest_plot_png(h: pd.DataFrame, lang: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evalkit.i18n import outcome_label, reform_label
    from evalkit.viz.style import use_cjk_font

    use_cjk_font()
    n = len(h)
    fig, ax = plt.subplots(figsize=(8.2, max(1.6, 0.34 * n + 1.0)))
    h = h.iloc[::-1].reset_index(drop=True)  # best evidence on top
    y = list(range(n))
    for i, r in h.iterrows():
        color = VERDICT_COLORS.get(r["verdict"], "#34495e")
        lo, hi, pct = r["pct_ci_low"], r["pct_ci_high"], r["pct"]
        if not (math.isnan(lo) or math.isnan(hi)):
            ax.plot([lo, hi], [i, i], color=color, lw=1.6)
        ax.plot([pct], [i], "o", color=color, ms=5)
    labels = [f"{reform_label(r.reform, lang)} · {outcome_label(r.outcome, lang)}"
              + (f" ({_region_label(r.region)})" if _region_label(r.region) not in ("", "—") else "")
              for r in h.itertuples()]
    ax.set_yticks(y, labels, fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(TEXT[lang]["forest_x"], fontsize=9)
    ax.set_ylim(-0.7, n - 0.3)
    ax.grid(axis="y", alpha=0)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150)
    plt.close(fig)
    return buf.getvalue()


def render_portfolio_html(df: pd.DataFrame, batch: str, lang: str = "zh") -> str:
    from evalkit.i18n import VERDICT_LABELS as VERDICTS
    from evalkit.i18n import estimator_label, fmt_p, fmt_pct, outcome_label, reform_label, t

    tx = TEXT[lang]
    e = html.escape
    per_eval = df.drop_duplicates("evaluation_id")
    n, n_failed = len(per_eval), int((per_eval["status"] == "failed").sum())
    synthetic = bool(df["synthetic"].fillna(False).astype(bool).any())
    h = _headlines(df)
    parts = []
    if synthetic:
        notice = e(t("synthetic_notice", lang))
        parts.append(f'<div class="notice">{notice}</div><div class="banner">{notice}</div>')
    parts.append(f"<h1>{e(tx['title'])}</h1>")
    parts.append(f'<p class="meta">{e(tx["batch"])}: <b>{e(batch)}</b> · {e(tx["generated"])}: {e(now())} · '
                 f'{e(tx["n"])}: {n} ({n - n_failed} {e(tx["ok"])}, {n_failed} {e(tx["failed"])})</p>')
    parts.append(f"<h2>{e(tx['forest_h'])}</h2>")
    if len(h):
        png = base64.b64encode(forest_plot_png(h, lang)).decode()
        parts.append(f'<img class="forest" src="data:image/png;base64,{png}" alt="forest plot">')
        legend = " ".join(f'<span style="color:{c}">●</span> {e(VERDICTS[k][lang])}'
                          for k, c in VERDICT_COLORS.items() if k in VERDICTS)
        parts.append(f'<p class="legend">{legend}</p>')
    else:
        parts.append(f"<p>{e(tx['none'])}</p>")
    parts.append(f"<h2>{e(tx['ranked_h'])}</h2><p class='note'>{e(tx['ranked_note'])}</p>")
    head = ["rank", "evaluation", "reform", "outcome", "region", "estimator", "effect", "ci", "p", "verdict", "units"]
    rows = []
    for i, r in enumerate(h.itertuples(), 1):
        vlabel = VERDICTS.get(r.verdict, {}).get(lang, r.verdict)
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in [
            i, e(r.evaluation_id), e(reform_label(r.reform, lang)), e(outcome_label(r.outcome, lang)),
            e(_region_label(r.region)), e(estimator_label(r.estimator, lang)),
            e(fmt_pct(r.pct, lang, signed=True)),
            e(f"[{fmt_pct(r.pct_ci_low, lang, signed=True)}, {fmt_pct(r.pct_ci_high, lang, signed=True)}]"),
            e(fmt_p(r.p_value)), f'<span style="color:{VERDICT_COLORS.get(r.verdict, "#000")}">{e(vlabel)}</span>',
            f"{_int(r.n_treated)}/{_int(r.n_control)}"]) + "</tr>")
    parts.append("<table><thead><tr>" + "".join(f"<th>{e(tx[k])}</th>" for k in head) + "</tr></thead><tbody>"
                 + "".join(rows) + "</tbody></table>")
    parts.append(f"<h2>{e(tx['failures_h'])}</h2>")
    failed = per_eval[per_eval["status"] == "failed"]
    if failed.empty:
        parts.append(f"<p>{e(tx['no_failures'])}</p>")
    else:
        items = []
        for r in failed.itertuples():
            err = (r.error or "").strip()
            items.append(f"<li><b>{e(r.evaluation_id)}</b> <span class='src'>({e(str(r.source))})</span>"
                         f"<pre>{e(err[:1500])}</pre><span class='src'>{e(tx['log'])}: logs/{e(r.evaluation_id)}.log"
                         "</span></li>")
        parts.append("<ul class='failures'>" + "".join(items) + "</ul>")
    css = """
@page { size: A4; margin: 16mm 13mm 15mm 13mm; }
body { font-family: "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", sans-serif;
       font-size: 10pt; color: #222; }
h1 { font-size: 17pt; margin: 0 0 4px; } h2 { font-size: 12.5pt; margin: 16px 0 6px; border-bottom: 1px solid #ccc; }
.meta, .note, .legend, .src { color: #555; font-size: 8.5pt; }
.forest { width: 100%; }
table { border-collapse: collapse; width: 100%; font-size: 8pt; }
th, td { border-bottom: 1px solid #ddd; padding: 2px 4px; text-align: left; }
tr { page-break-inside: avoid; }
pre { white-space: pre-wrap; font-size: 7.5pt; background: #f6f6f6; padding: 4px; margin: 2px 0; }
.notice { position: fixed; top: -11mm; left: 0; right: 0; text-align: center; color: #c0392b; font-size: 8pt; }
.banner { border: 2px solid #c0392b; color: #c0392b; font-weight: bold; text-align: center; padding: 4px;
          margin-bottom: 8px; }
"""
    return (f'<!DOCTYPE html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
            f"{CSP_META}<title>{e(tx['title'])} — {e(batch)}</title><style>{css}</style></head><body>"
            + "\n".join(parts) + "</body></html>")


def _int(v: Any) -> str:
    try:
        return f"{int(v):,}"
    except (TypeError, ValueError):
        return "—"


def write_portfolio(batch_dir: Path, batch: str, items: list[BatchItem], records: dict[str, dict[str, Any]],
                    *, pdf: bool = True, lang: str | None = None,
                    ready: dict[str, list[dict[str, Any]]] | None = None) -> tuple[Path, Path, Path | None]:
    """Write ``summary.parquet``, ``portfolio.html`` and (``pdf``) ``portfolio.pdf``; all atomically.
    ``ready``: summary rows already read (:func:`build_summary`). With ``pdf``, Chromium starts in a
    thread at once, so that its start overlaps the summary and the forest plot; inside a browser session (the
    batch's, started while its last evaluations ran) that session's browser prints the PDF."""
    from evalkit.export import browser_session, html_to_pdf, in_browser_session, prestart_browser

    with contextlib.nullcontext() if in_browser_session() else browser_session():
        start = None
        if pdf:
            start = threading.Thread(target=contextvars.copy_context().run, args=(prestart_browser,),
                                     name="evalkit-portfolio-browser", daemon=True)
            start.start()
        try:
            df = build_summary(batch, items, records, batch_dir, ready)
            summary = write_parquet_atomic(df, batch_dir / "summary.parquet")
            if lang is None:
                langs = Counter((it.params or {}).get("lang", "zh") for it in items if it.ok)
                lang = langs.most_common(1)[0][0] if langs else "zh"
            html_path = batch_dir / "portfolio.html"
            atomic_write_text(html_path, render_portfolio_html(df, batch, lang))
        finally:
            if start is not None:
                start.join()  # the session's browser is in place (or none could start: html_to_pdf says why)
        pdf_path = html_to_pdf(html_path, batch_dir / "portfolio.pdf") if pdf else None
    return summary, html_path, pdf_path
