"""The bureau's prevention-index report: its params, its numbers on the demo world (seed 7), and the
PDF through `evalkit run` (Chinese by default, English on request, synthetic notice on every page)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.index import compute_index, load_definition
from evalkit.index.report import build_report, months_of
from evalkit.index.report_params import IndexReportParams, validate_report_params
from evalkit.params import ParamsError, load_params
from evalkit.warehouse import connect

ROOT = Path(__file__).resolve().parents[1]
DEFN = ROOT / "params" / "index" / "prevention_index.yaml"
PLANTED = ("900000070000", "2024-07", "visits_10k")  # demo index_truth.json: visits × 0.25 in 柳金区


def _params(**kw) -> IndexReportParams:
    return validate_report_params({"evaluation_id": "b", "index_definition": str(DEFN), **kw})


def test_report_params_file_and_errors():
    p = load_params(ROOT / "params" / "index_bureau.yaml")
    assert isinstance(p, IndexReportParams) and p.notebook == "prevention_index"
    assert (p.period, p.at, p.lang, p.region.as_filter()) == ("quarter", "2024-Q3", "zh", {})
    with pytest.raises(ParamsError, match=r"in x.yaml:\n  - reform: unknown key"):
        validate_report_params({"evaluation_id": "b", "reform": "两队一室"}, "x.yaml")
    with pytest.raises(ParamsError, match=r"at: '2024-07' is not a quarter label"):
        _params(at="2024-07")
    assert months_of("2024-Q3", "quarter") == ("2024-07", "2024-09")
    assert months_of("2024", "year") == ("2024-01", "2024-12")
    assert months_of("2024-02", "month") == ("2024-02", "2024-02")


def test_report_numbers_on_the_demo_world(demo_warehouse, tmp_path):
    wh = tmp_path / "wh.duckdb"
    shutil.copy(demo_warehouse, wh)
    p = _params(region={"county": "柳金区"}, period="quarter", at="2024-Q3", warehouse=str(wh))
    rep = build_report(p)
    assert rep.synthetic and rep.at == "2024-Q3" and rep.previous == "2024-Q2"
    r = rep.ranking
    assert len(r) == 14 and list(r["rank"]) == sorted(r["rank"]) and r["rank"].iloc[0] == 1
    # the same scores and ranks as `evalkit index compute --region county=柳金区 --period quarter`
    con = connect(wh)
    table = compute_index(con, load_definition(DEFN), period="quarter", region={"county": "柳金区"})
    ref = con.execute(f"SELECT station_id, period, \"index\", rank FROM {table}").df()
    con.close()
    got = r.set_index("station_id").sort_index()
    now = ref[ref["period"] == "2024-Q3"].set_index("station_id").loc[got.index]
    before = ref[ref["period"] == "2024-Q2"].set_index("station_id").loc[got.index]
    assert (got["index"] - now["index"]).abs().max() < 1e-9
    assert (got["rank"] == now["rank"]).all()
    assert (got["d_index"] - (now["index"] - before["index"])).abs().max() < 1e-9
    assert (got["d_rank"] == before["rank"] - now["rank"]).all()
    q = ref[ref["period"] == "2023-Q1"]["index"]
    t = rep.trend.set_index("period").loc["2023-Q1"]
    assert abs(t["mean"] - q.mean()) < 1e-9 and t["stations"] == 14
    # the planted collapse of visits is among the quarter's alerts, with its notice
    hits = rep.alerts[(rep.alerts["station_id"] == PLANTED[0]) & (rep.alerts["period"] == PLANTED[1])]
    assert list(hits["indicator"]) == [PLANTED[2]]
    assert set(rep.alerts["period"]) <= {"2024-07", "2024-08", "2024-09"}
    assert "万人走访户数" in rep.notices[PLANTED[0]]
    # the warehouse is only read (the monthly table for the alerts is a TEMP table)
    con = connect(wh, read_only=True)
    assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'ek_index%'").fetchall()[0][0]
    con.close()


def test_period_alerts_read_only_the_months_the_rule_needs(demo_warehouse):
    """The report builds the monthly values of HISTORY months before the period only: its alerts are
    those of the whole monthly index table (the rule as `evalkit index alerts` runs it), also for a
    period whose history starts before the data."""
    import pandas as pd

    from evalkit.index.alerts import alerts_sql
    from evalkit.index.compute import default_window, index_sql, values_sql
    from evalkit.index.report import period_alerts

    defn = load_definition(DEFN)
    con = connect(demo_warehouse, read_only=True)
    d0, d1 = default_window(con, defn)
    sql, named = index_sql(defn, "month", d0, d1)
    con.execute(f"CREATE TEMP TABLE whole AS {sql}", named)
    vsql, vnamed = values_sql(defn, "month", d0, d1)
    ids = [i.id for _, i in defn.indicators]
    pd.testing.assert_frame_equal(con.execute(vsql, vnamed).df(),
                                  con.execute(f"SELECT station_id, period, {', '.join(ids)} FROM whole").df())
    for first, last in (("2024-07", "2024-09"), ("2020-01", "2020-12")):
        want = pd.concat([con.execute(f"SELECT * FROM ({alerts_sql(defn, 'whole', only=i)}) "
                                      f"WHERE period BETWEEN ? AND ?", [first, last]).df() for i in ids],
                         ignore_index=True)
        want = want.sort_values(["station_id", "period", "capability", "indicator"]).reset_index(drop=True)
        got = period_alerts(con, defn, first, last, None)
        assert len(got) > 0
        # the same numbers bit for bit (the concatenation of per-indicator frames, some empty, has
        # object columns where the report's one query has strings)
        pd.testing.assert_frame_equal(got, want, check_exact=True, check_dtype=False)
    con.close()


def _pdf_pages(pdf: Path) -> list[str]:
    exe = shutil.which("pdftotext")
    if exe is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    text = subprocess.run([exe, "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return [pg for pg in text.split("\f") if pg.strip()]


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_evalkit_run_writes_the_bureau_pdf(demo_warehouse, tmp_path, lang):
    from evalkit.i18n import t

    proc = subprocess.run([sys.executable, "-m", "evalkit", "run", str(ROOT / "params" / "index_bureau.yaml"),
                           "--warehouse", str(demo_warehouse), "--outputs", str(tmp_path), "--lang", lang, "-q"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "index_bureau"
    nb = json.loads((out / "executed.ipynb").read_text(encoding="utf-8"))
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    images = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the radars and the index over time
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert res["at"] == "2024-Q3" and len(res["ranking"]) == 100 and res["alerts"]  # every demo station
    pages = _pdf_pages(out / "brief.pdf")
    notice = t("synthetic_notice", lang)
    assert len(pages) >= 2 and all(notice[:10] in " ".join(pg.split()) for pg in pages)
    text = " ".join(" ".join(pages).split())
    if lang == "zh":
        assert "主防指数报告" in text and "排名" in text and "本期提醒单" in text and "龙湖路派出所" in text
    else:
        assert "Prevention index report" in text and "Ranking" in text and "Reminders of the period" in text
