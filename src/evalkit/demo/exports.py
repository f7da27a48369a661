"""Raw-export writers of the demo world: incident / dispute CSV and Parquet tables in the
sources' encodings and formats, the stations workbook and the reforms CSV."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from evalkit import registry, schema
from evalkit.demo.params import (
    C_IDX,
    CATS,
    DCATS,
    NC,
    NP,
    World,
)


# ---------------------------------------------------------------------------- writers
def _enc_for_incidents(year: int) -> str:
    return "gb18030" if year % 2 == 1 else "utf-8-sig"


def _enc_for_disputes(year: int) -> str:
    return "gb18030" if year <= 2022 else "utf-8"


def _slash_year(years: list[int]) -> int | None:
    """The one incident file written with '2023/3/20 14:05' timestamps."""
    if len(years) < 2:
        return None
    return 2022 if 2022 in years else years[len(years) // 2]


class _CsvAppender:
    """Writes one CSV in chunks: header once, arrow for the body, transcoding when needed."""

    def __init__(self, path: Path, header: list[str], encoding: str):
        self.path, self.encoding = path, encoding
        self.fh = open(path, "wb")  # noqa: SIM115
        head = ",".join(header) + "\r\n"
        if encoding == "utf-8-sig":
            self.fh.write(b"\xef\xbb\xbf" + head.encode("utf-8"))
        else:
            self.fh.write(head.encode(encoding))
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        buf = io.BytesIO()
        pcsv.write_csv(table, buf, pcsv.WriteOptions(include_header=False, quoting_style="none",
                                                     eol="\r\n", batch_size=65536))
        data = buf.getvalue()
        if self.encoding == "gb18030":
            data = data.decode("utf-8").encode("gb18030")
        self.fh.write(data)
        self.rows += table.num_rows

    def close(self) -> None:
        self.fh.close()


def _ts_strings(sec: np.ndarray, fmt: str) -> pa.Array:
    mask = sec < 0
    arr = pa.array(sec, type=pa.int64(), mask=mask).cast(pa.timestamp("s"))
    iso = pc.cast(arr, pa.string())  # 'YYYY-MM-DD HH:MM:SS' (fast, unlike strftime)
    if fmt == "slash":
        return pc.binary_join_element_wise(
            pc.cast(pc.year(arr), pa.string()), "/", pc.cast(pc.month(arr), pa.string()), "/",
            pc.cast(pc.day(arr), pa.string()), " ", pc.utf8_slice_codeunits(iso, 11, 16), "")
    return iso


def _ids(prefix: str, year: int, start: int, n: int, width: int) -> pa.Array:
    num = pc.cast(pa.array(np.arange(start, start + n, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(f"{prefix}{year}", pc.utf8_lpad(num, width=width, padding="0"), "")


_IS = pa.array(["否", "是"])
_HANDLED_ZH = pa.array(["派出所", "巡逻", "分流"])


def _category_labels(cat: np.ndarray, year: int, rng: np.random.Generator) -> pa.Array:
    """Chinese category names with realistic alias use (电信诈骗 from 2021, a few 民间纠纷 / 求助 / 斗殴)."""
    labels = [registry.CATEGORIES[c].zh for c in CATS]
    labels += ["电信诈骗", "民间纠纷", "求助", "斗殴", "交通事故"]
    code = cat.astype(np.int64).copy()
    u = rng.random(len(cat))
    code[(cat == C_IDX["fraud"]) & (u < (0.75 if year >= 2021 else 0.1))] = NC + 0
    code[(cat == C_IDX["dispute"]) & (u < 0.10)] = NC + 1
    code[(cat == NP) & (u < (0.15 if year % 3 == 0 else 0.02))] = NC + 2
    code[(cat == C_IDX["fight"]) & (u < 0.03)] = NC + 3
    code[(cat == C_IDX["traffic"]) & (u < 0.20)] = NC + 4
    return pa.array(labels).take(pa.array(code))


def _incident_table(w: World, rec: dict, year: int, id_start: int, fmt: str, rng: np.random.Generator,
                    station_codes: pa.Array) -> pa.Table:
    n = len(rec["received"])
    H = {c.name: c.zh for c in schema.INCIDENTS.columns}
    cols = {
        H["incident_id"]: _ids("JQ", year, id_start, n, 9),
        H["station_id"]: station_codes.take(pa.array(rec["station"])),
        H["received_at"]: _ts_strings(rec["received"], fmt),
        H["dispatched_at"]: _ts_strings(rec["dispatched"], fmt),
        H["arrived_at"]: _ts_strings(rec["arrived"], fmt),
        H["closed_at"]: _ts_strings(rec["closed"], fmt),
        H["category"]: _category_labels(rec["category"], year, rng),
        H["handled_by"]: _HANDLED_ZH.take(pa.array(rec["handled"].astype(np.int64))),
        H["is_case"]: _IS.take(pa.array(rec["is_case"].astype(np.int64))),
    }
    return pa.table(cols)


def _incident_parquet_table(rec: dict, year: int, id_start: int, station_codes: pa.Array,
                            rng: np.random.Generator) -> pa.Table:
    def ts(x: np.ndarray) -> pa.Array:
        return pa.array(x, type=pa.int64(), mask=x < 0).cast(pa.timestamp("s"))

    H = {c.name: c.zh for c in schema.INCIDENTS.columns}
    n = len(rec["received"])
    return pa.table({
        H["incident_id"]: _ids("JQ", year, id_start, n, 9),
        H["station_id"]: station_codes.take(pa.array(rec["station"])),
        H["received_at"]: ts(rec["received"]),
        H["dispatched_at"]: ts(rec["dispatched"]),
        H["arrived_at"]: ts(rec["arrived"]),
        H["closed_at"]: ts(rec["closed"]),
        H["category"]: _category_labels(rec["category"], year, rng).dictionary_encode(),
        H["handled_by"]: _HANDLED_ZH.take(pa.array(rec["handled"].astype(np.int64))).dictionary_encode(),
        H["is_case"]: _IS.take(pa.array(rec["is_case"].astype(np.int64))).dictionary_encode(),
    })


def _dispute_table(rec: dict, year: int, id_start: int, station_codes: pa.Array) -> pa.Table:
    H = {c.name: c.zh for c in schema.DISPUTES.columns}
    n = len(rec["opened"])

    def dates(d: np.ndarray) -> pa.Array:
        arr = pa.array(d.astype(np.int32), type=pa.int32(), mask=d < 0).cast(pa.date32())
        return pc.cast(arr, pa.string())

    dlabels = pa.array([registry.DISPUTE_CATEGORIES[c][0] for c in DCATS])
    return pa.table({
        H["dispute_id"]: _ids("JF", year, id_start, n, 8),
        H["station_id"]: station_codes.take(pa.array(rec["station"])),
        H["opened_on"]: dates(rec["opened"]),
        H["closed_on"]: dates(rec["closed"]),
        H["category"]: dlabels.take(pa.array(rec["dcat"].astype(np.int64))),
        H["resolved"]: _IS.take(pa.array(rec["resolved"].astype(np.int64))),
        H["escalated"]: _IS.take(pa.array(rec["escalated"].astype(np.int64))),
    })


def _write_stations_xlsx(w: World, path: Path) -> None:
    H = {c.name: c.zh for c in schema.STATIONS.columns}
    st = w.stations[[c.name for c in schema.STATIONS.columns]].copy()
    st["area_type"] = st["area_type"].map(registry.AREA_TYPES_ZH)
    st = st.rename(columns=H)
    if len(st) > 5000:  # large registers: write_only mode is much faster
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        ws = wb.create_sheet(schema.STATIONS.zh)
        ws.append(list(st.columns))
        for row in st.itertuples(index=False):
            ws.append([v.item() if hasattr(v, "item") else v for v in row])
        wb.save(path)
    else:
        with pd.ExcelWriter(path, engine="openpyxl") as xw:
            st.to_excel(xw, sheet_name=schema.STATIONS.zh, index=False)
    _fix_xlsx_stamps(path)


# the stamp written into the demo workbook instead of the wall clock (same world, same bytes)
_XLSX_STAMP = (2020, 1, 1, 0, 0, 0)


def _fix_xlsx_stamps(path: Path) -> None:
    """Rewrite the workbook with fixed zip-entry times and document-property dates, so the same
    world gives the same bytes (and the same sha256 in the warehouse's ingest log) on every run."""
    import re
    import zipfile

    y, mo, d, h, mi, s = _XLSX_STAMP
    stamp = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z"
    with zipfile.ZipFile(path) as zin:
        entries = [(i, zin.read(i.filename)) for i in zin.infolist()]
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in entries:
            if info.filename == "docProps/core.xml":  # dcterms:created / dcterms:modified
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + stamp.encode(), data)
            zout.writestr(zipfile.ZipInfo(info.filename, date_time=_XLSX_STAMP), data, zipfile.ZIP_DEFLATED)
    tmp.replace(path)


def _write_reforms_csv(w: World, path: Path) -> int:
    H = {c.name: c.zh for c in schema.REFORMS.columns}
    rf = w.reforms.sort_values(["adopted_on", "station_id"], kind="stable")
    out = pd.DataFrame({
        H["station_id"]: rf["station_id"],
        H["reform"]: rf["reform_zh"],
        H["adopted_on"]: rf["adopted_on"].dt.strftime("%Y-%m-%d"),
        # issue 17: the stop date of one county's diversion stations, the dose of 一村一辅警; empty elsewhere
        H["ended_on"]: rf["ended_on"].dt.strftime("%Y-%m-%d").fillna(""),
        H["intensity"]: [f"{x:g}" if np.isfinite(x) else "" for x in rf["intensity"]],
    })
    out.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
    return len(out)


ADJACENCY_FILE = "adjacency.csv"


def write_adjacency_csv(w: World, path: Path) -> int:
    """The station adjacency export (相邻派出所): each pair of stations sharing a border, listed in
    both directions (派出所编码 → 相邻派出所编码), 是否接壤 = 是. Returns the rows written."""
    H = {c.name: c.zh for c in schema.ADJACENCY.columns}
    ids = w.stations["station_id"].to_numpy()
    pairs = np.concatenate([w.adjacency, w.adjacency[:, ::-1]])
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    out = pd.DataFrame({H["station_id"]: ids[pairs[:, 0]], H["neighbor_id"]: ids[pairs[:, 1]],
                        H["shared_border"]: "是"})
    out.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
    return len(out)
