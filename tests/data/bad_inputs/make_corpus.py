"""Generate the bad-input corpus for tests/test_ingest_corpus.py.

    .venv/bin/python tests/data/bad_inputs/make_corpus.py

Every file here is listed in ``CASES`` with what ingesting it must produce: either an exact
:class:`IngestError` message (``{file}`` stands for the path) or exact quarantine reason counts,
accepted rows and (for some) the quarantined source rows. Tests run each case against a fresh
warehouse holding the station register ``_register_stations.csv`` and the study window
2019-01..2025-12.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
WINDOW = ("2019-01", "2025-12")

INC_H = ["警情编号", "所属派出所编码", "接警时间", "派警时间", "到场时间", "结警时间", "警情类别", "处置力量", "是否立案"]
ST_H = ["派出所编码", "派出所名称", "所属区县", "所属地市", "省份", "辖区类型", "辖区常住人口", "民警数", "辅警数", "行政村数"]
RF_H = ["派出所编码", "改革事项", "实施日期"]
DS_H = ["纠纷编号", "派出所编码", "受理日期", "办结日期", "纠纷类型", "是否化解", "是否民转刑"]

REGISTER = [
    ["S001", "青石路派出所", "青石区", "江城市", "某省", "城区", "52000", "30", "40", "0"],
    ["S002", "河口派出所", "青石区", "江城市", "某省", "农村", "18000", "12", "25", "14"],
    ["S003", "东湖派出所", "东湖区", "江城市", "某省", "城乡结合", "26000", "15", "30", "6"],
]


def inc(i, st="S001", rec="2023-03-20 14:05:00", dis="2023-03-20 14:07:00", arr="2023-03-20 14:15:00",
        clo="2023-03-20 15:00:00", cat="盗窃", hb="派出所", case="否"):
    return [i if isinstance(i, str) else f"J{i:06d}", st, rec, dis, arr, clo, cat, hb, case]


def csv_text(header, rows, delim=",") -> str:
    out = io.StringIO()
    out.write(delim.join(header) + "\n")
    for r in rows:
        out.write(delim.join("" if v is None else str(v) for v in r) + "\n")
    return out.getvalue()


@dataclass
class Case:
    file: str | list[str]
    table: str
    error: str | None = None  # exact IngestError message, {file} = path of the (first) file
    reasons: dict[str, int] = field(default_factory=dict)  # exact quarantined_by_reason
    accepted: int | None = None
    rows: dict[str, list[int]] = field(default_factory=dict)  # reason → quarantined source rows
    sheet: str | int | None = None
    mapping: dict | None = None
    note: str = ""


CASES: list[Case] = []
WRITERS: dict[str, object] = {}


def add(case: Case, data) -> None:
    CASES.append(case)
    name = case.file if isinstance(case.file, str) else None
    if name is not None and data is not None:
        WRITERS[name] = data


MISSING_TAIL = (" — rename the header, map it with --mapping (see --suggest-mapping) or give one value with "
                "--set COLUMN=VALUE")


def build() -> None:
    CASES.clear()
    WRITERS.clear()
    good = [inc(i) for i in range(1, 4)]
    # ------------------------------------------------------------------ encodings
    add(Case("enc_utf16.csv", "incidents",
             error="{file}: row 1: file is UTF-16 or binary, not a text CSV; save it as UTF-8 or GB18030 CSV"),
        csv_text(INC_H, good).encode("utf-16"))
    head = (",".join(INC_H) + "\n").encode("utf-8")
    add(Case("enc_undecodable.csv", "incidents",
             error=f"{{file}}: row 2: undecodable bytes at byte {len(head)}: the file is neither UTF-8 nor GB18030/GBK"),
        head + b"\x81\x20\xff" + b"\n")
    big = [inc(i) for i in range(1, 1200)]
    add(Case("enc_utf8_then_gbk.csv", "incidents",
             error="{file}: row 1201: invalid UTF-8 byte sequence (file detected as UTF-8 from its first bytes; "
                   "mixed or wrong encoding?)"),
        csv_text(INC_H, big).encode("utf-8") + csv_text(INC_H, [inc(5000)])[len(",".join(INC_H)) + 1:].encode("gb18030"))
    add(Case("enc_gbk_then_garbage.csv", "incidents",
             error="{file}: row 1201: undecodable bytes (file detected as GB18030 from its first bytes; "
                   f"mixed or wrong encoding near byte {len(csv_text(INC_H, big).encode('gb18030')) + 8})"),
        csv_text(INC_H, big).encode("gb18030") + b"J999999,\x81\x20\xff\n")
    add(Case("ok_gb18030.csv", "incidents", accepted=3), csv_text(INC_H, good).encode("gb18030"))
    add(Case("ok_utf8_bom.csv", "incidents", accepted=3), csv_text(INC_H, good).encode("utf-8-sig"))
    add(Case("ok_tab_delimited.tsv", "incidents", accepted=3), csv_text(INC_H, good, "\t").encode("utf-8"))
    # ------------------------------------------------------------------ truncation / structure
    text = csv_text(INC_H, good)
    add(Case("truncated_row.csv", "incidents",
             error="{file}: row 4: expected 9 fields, found 3 (truncated file or row)"),
        text[: text.rindex("\n", 0, len(text) - 1) + 1 + 30].encode("utf-8"))
    add(Case("truncated_quote.csv", "incidents",
             error="{file}: row 3: unterminated quote (truncated file?)"),
        (csv_text(INC_H, good[:1]) + 'J000002,S001,"2023-03-20 14:05').encode("utf-8"))
    add(Case("extra_field.csv", "incidents",
             error="{file}: row 3: expected 9 fields, found 10 (extra delimiter in row)"),
        (csv_text(INC_H, good[:1]) + ",".join(inc(2)) + ",x\n").encode("utf-8"))
    add(Case("truncated.xlsx", "stations",
             error="{file}: not a readable XLSX workbook (truncated or corrupt: BadZipFile)"), "xlsx_truncated")
    add(Case("truncated.parquet", "incidents",
             error="{file}: not a readable Parquet file (truncated or corrupt)"), "parquet_truncated")
    add(Case("empty.csv", "incidents", error="{file}: file is empty"), b"")
    add(Case("empty_blank_lines.csv", "incidents", error="{file}: file is empty"), b"\n\r\n   \n")
    add(Case("empty_sheet.xlsx", "stations", error="{file}: sheet 'Sheet' is empty"), "xlsx_empty")
    add(Case("header_only.csv", "incidents", accepted=0), csv_text(INC_H, []).encode("utf-8"))
    add(Case("unsupported.json", "incidents", error="{file}: unsupported file type '.json' (use CSV, XLSX or Parquet)"),
        b'{"a": 1}')
    add(Case("stations_wrong_sheet.xlsx", "stations", sheet="不存在",
             error="{file}: no sheet '不存在'; sheets: 说明, 派出所"), "xlsx_two_sheets")
    add(Case("unknown_table.csv", "arrests",
             error="unknown table 'arrests'; tables: stations, reforms, incidents, disputes, cases, visits, hazards, "
                   "patrols, surveys, complaints, adjacency"), csv_text(INC_H, good).encode())
    # ------------------------------------------------------------------ headers
    h = [c for c in INC_H if c != "警情编号"]
    add(Case("missing_col_incident_id.csv", "incidents",
             error="{file}: row 1: missing required column incident_id (e.g. 警情编号, 接警编号, 警情号)"
                   + MISSING_TAIL),
        csv_text(h, [r[1:] for r in good]).encode())
    h = [c for c in INC_H if c != "接警时间"]
    add(Case("missing_col_received_at.csv", "incidents",
             error="{file}: row 1: missing required column received_at (e.g. 接警时间, 报警时间, 受理时间)"
                   + MISSING_TAIL),
        csv_text(h, [r[:2] + r[3:] for r in good]).encode())
    h = [c for c in ST_H if c != "辖区常住人口"]
    # a register needs only its key: a missing population column is unknown (NULL), reported, not an error
    add(Case("missing_col_population.csv", "stations", accepted=len(REGISTER),
             note="population stored as unknown (NULL) and reported as a missing column"),
        csv_text(h, [r[:6] + r[7:] for r in REGISTER]).encode())
    add(Case("dup_header.csv", "incidents",
             error="{file}: row 1: column '接警时间': duplicated header '接警时间' (columns 3 and 10)"),
        csv_text(INC_H + ["接警时间"], [r + [r[2]] for r in good]).encode())
    add(Case("dup_alias_header.csv", "incidents",
             error="{file}: row 1: column '接警编号': duplicated header: '警情编号' and '接警编号' both map to "
                   "'incident_id'; keep one of them or map one elsewhere with a mapping file"),
        csv_text(INC_H + ["接警编号"], [r + [r[0]] for r in good]).encode())
    add(Case("unknown_columns.csv", "incidents", accepted=3, note="备注 and 天气 reported as unknown"),
        csv_text(INC_H + ["备注", "天气"], [r + ["无", "晴"] for r in good]).encode())
    add(Case("personal_columns.csv", "incidents", accepted=3,
             note="报警人姓名/身份证号/联系电话 refused"),
        csv_text(INC_H + ["报警人姓名", "身份证号", "联系电话"],
                 [r + ["张三", "110101199003071234", "13800138000"] for r in good]).encode())
    add(Case("user_mapping.csv", "incidents", accepted=3, mapping={"incidents": {"报警时刻": "received_at"}}),
        csv_text([("报警时刻" if c == "接警时间" else c) for c in INC_H], good).encode())
    # ------------------------------------------------------------------ values: incidents
    add(Case("all_rows_bad.csv", "incidents", accepted=0, reasons={"bad_datetime": 4},
             rows={"bad_datetime": [2, 3, 4, 5]}),
        csv_text(INC_H, [inc(i, rec=v) for i, v in enumerate(["昨天", "2023-02-30 10:00", "20x3-01-01", "-"], 1)]).encode())
    fmts = ["2023-03-20 14:05:00", "2023/3/20 14:05", "2023/03/20 14:05:00", "2023年3月20日14时05分",
            "2023-03-20T14:05:00", "2023年3月20日 14:05", "20230320140500", "2023.3.20 14:05"]
    add(Case("mixed_date_formats.csv", "incidents", accepted=len(fmts), note="all parse to 2023-03-20 14:05"),
        csv_text(INC_H, [inc(i, rec=v, dis=None, arr=None, clo=None) for i, v in enumerate(fmts, 1)]).encode())
    add(Case("date_only.csv", "incidents", accepted=2),
        csv_text(INC_H, [inc(1, rec="2023-03-20", dis=None, arr=None, clo=None),
                         inc(2, rec="2023/3/20", dis=None, arr=None, clo=None)]).encode())
    add(Case("excel_serial_dates.csv", "incidents", accepted=2, note="45005.5868055556 = 2023-03-20 14:05"),
        csv_text(INC_H, [inc(1, rec="45005.5868055556", dis=None, arr="45005.59375", clo=None),
                         inc(2, rec="45005", dis=None, arr=None, clo=None)]).encode())
    add(Case("excel_serial_dates.xlsx", "incidents", accepted=2), "xlsx_serial")
    add(Case("bad_datetime.csv", "incidents", accepted=1, reasons={"bad_datetime": 2}, rows={"bad_datetime": [3, 4]}),
        csv_text(INC_H, [inc(1), inc(2, arr="2023-13-45 10:00"), inc(3, clo="soon")]).encode())
    add(Case("negative_response.csv", "incidents", accepted=1, reasons={"arrival_before_receipt": 2},
             rows={"arrival_before_receipt": [3, 4]}),
        csv_text(INC_H, [inc(1), inc(2, arr="2023-03-20 13:05:00"), inc(3, arr="2023/3/20 14:04")]).encode())
    add(Case("absurd_response.csv", "incidents", accepted=1, reasons={"absurd_response_time": 1},
             rows={"absurd_response_time": [3]}),
        csv_text(INC_H, [inc(1, arr="2023-03-21 14:05:00"), inc(2, arr="2023-03-22 14:06:00")]).encode())
    add(Case("dispatch_closed_order.csv", "incidents", accepted=0,
             reasons={"dispatch_before_receipt": 1, "closed_before_receipt": 1}),
        csv_text(INC_H, [inc(1, dis="2023-03-20 14:00:00"), inc(2, clo="2023-03-19 15:00:00")]).encode())
    add(Case("future_dates.csv", "incidents", accepted=1, reasons={"future_date": 2}, rows={"future_date": [3, 4]}),
        csv_text(INC_H, [inc(1), inc(2, rec="2099-01-01 10:00:00", dis=None, arr=None, clo=None),
                         inc(3, clo="2099-01-01 10:00:00")]).encode())
    add(Case("outside_window.csv", "incidents", accepted=1, reasons={"outside_window": 2}),
        csv_text(INC_H, [inc(1), inc(2, rec="2015-06-01 10:00:00", dis=None, arr=None, clo=None),
                         inc(3, rec="2026-01-01 00:00:00", dis=None, arr=None, clo=None)]).encode())
    # 2 of 3 rows name an unknown station: above the 1 % gate the ingest stops (quarantining them on
    # request, --accept-unmatched, is tested in tests/test_station_match.py)
    add(Case("unknown_station.csv", "incidents",
             error="{file}: 2 of 3 rows (66.7%, more than 1%) name a station not in the register, most often: "
                   "S999 (1), 不存在派出所 (1); add them to the station register or correct the unit names in the "
                   "export, or pass --accept-unmatched to quarantine them"),
        csv_text(INC_H, [inc(1), inc(2, st="S999"), inc(3, st="不存在派出所")]).encode())
    add(Case("station_by_name.csv", "incidents", accepted=4, note="name, padded name, full-width id, lower-case id"),
        csv_text(["警情编号", "所属派出所"] + INC_H[2:],
                 [[*inc(1, st="青石路派出所")[:2], *inc(1)[2:]], inc(2, st=" 青石路派出所 "),
                  inc(3, st="Ｓ００２"), inc(4, st="s003")]).encode())
    add(Case("duplicate_ids.csv", "incidents", accepted=2, reasons={"duplicate_id": 2},
             rows={"duplicate_id": [4, 5]}),
        csv_text(INC_H, [inc(1), inc(2), inc(1), inc(2, rec="2023-03-21 10:00:00", dis=None, arr=None, clo=None)]).encode())
    add(Case(["dup_across_a.csv", "dup_across_b.csv"], "incidents", accepted=4, reasons={"duplicate_id": 2},
             rows={"duplicate_id": [2, 3]}), None)
    WRITERS["dup_across_a.csv"] = csv_text(INC_H, [inc(1), inc(2), inc(3)]).encode()
    WRITERS["dup_across_b.csv"] = csv_text(INC_H, [inc(2), inc(3), inc(4)]).encode("gb18030")
    add(Case("missing_values.csv", "incidents", accepted=1, reasons={"missing_required": 3},
             rows={"missing_required": [3, 4, 5]}),
        csv_text(INC_H, [inc(1), inc(""), inc(3, rec="  "), inc(4, cat="")]).encode())
    add(Case("bad_boolean.csv", "incidents", accepted=2, reasons={"bad_boolean": 1}),
        csv_text(INC_H, [inc(1, case="是"), inc(2, case="可能"), inc(3, case="true")]).encode())
    add(Case("bad_handled_by.csv", "incidents", accepted=2, reasons={"bad_value": 1}),
        csv_text(INC_H, [inc(1, hb="巡逻"), inc(2, hb="分流", arr=None), inc(3, hb="特警")]).encode())
    add(Case("unknown_category.csv", "incidents", accepted=3, note="外星人 stored as other and reported"),
        csv_text(INC_H, [inc(1, cat="电信诈骗"), inc(2, cat="外星人"), inc(3, cat="其他")]).encode())
    # ------------------------------------------------------------------ stations
    add(Case("stations_no_population.csv", "stations", accepted=1,
             reasons={"no_population": 2, "bad_number": 1}, rows={"no_population": [3, 4], "bad_number": [5]}),
        csv_text(ST_H, [REGISTER[0], REGISTER[1][:6] + ["0"] + REGISTER[1][7:],
                        REGISTER[2][:6] + [""] + REGISTER[2][7:],
                        ["S004", "新港派出所", "东湖区", "江城市", "某省", "城区", "约三万", "1", "1", "1"]]).encode())
    add(Case("stations_bad_values.csv", "stations", accepted=1, reasons={"bad_value": 1, "bad_number": 1}),
        csv_text(ST_H, [REGISTER[0], REGISTER[1][:5] + ["山区"] + REGISTER[1][6:],
                        REGISTER[2][:7] + ["-3"] + REGISTER[2][8:]]).encode())
    add(Case("stations_duplicate_ids.csv", "stations", accepted=2, reasons={"duplicate_id": 1}),
        csv_text(ST_H, [REGISTER[0], REGISTER[1], REGISTER[0]]).encode())
    add(Case("stations_ok.xlsx", "stations", accepted=3, note="two sheets; 派出所 chosen by name"), "xlsx_two_sheets")
    # ------------------------------------------------------------------ reforms
    add(Case("reforms_outside_panel.csv", "reforms", accepted=1, reasons={"outside_window": 2},
             rows={"outside_window": [3, 4]}),
        csv_text(RF_H, [["S001", "一室两队", "2021-06-01"], ["S002", "巡处一体化", "2017-01-01"],
                        ["S003", "警网融合", "2026-03-01"]]).encode())
    add(Case("reforms_unknown.csv", "reforms", accepted=2, reasons={"unknown_reform": 1}),
        csv_text(RF_H, [["S001", "两队一室", "2021-06-01"], ["S002", "智慧警务", "2021-01-01"],
                        ["S002", "12345分流", "2022年7月1日"]]).encode())
    add(Case("reforms_duplicates.csv", "reforms", accepted=1, reasons={"duplicate_id": 1},
             note="一室两队 is an alias of 两队一室: same key"),
        csv_text(RF_H, [["S001", "两队一室", "2021-06-01"], ["S001", "一室两队", "2021-07-01"]]).encode())
    add(Case("reforms_unknown_station.csv", "reforms",
             error="{file}: 1 of 1 rows (100.0%, more than 1%) name a station not in the register, most often: "
                   "S404 (1); add them to the station register or correct the unit names in the export, or pass "
                   "--accept-unmatched to quarantine them"),
        csv_text(RF_H, [["S404", "两队一室", "2021-06-01"]]).encode())
    # ------------------------------------------------------------------ disputes
    ds = [["D000001", "S001", "2023-03-01", "2023-03-05", "邻里纠纷", "是", "否"],
          ["D000002", "S002", "2023-03-10", "2023-03-01", "婚姻家庭", "是", "否"],
          ["D000003", "S003", "2023-03-10", "", "劳资纠纷", "否", "也许"],
          ["D000004", "S003", "2023-04-10", "", "其他纠纷", "否", "否"]]
    add(Case("disputes_gb18030.csv", "disputes", accepted=2, reasons={"closed_before_opened": 1, "bad_boolean": 1},
             rows={"closed_before_opened": [3], "bad_boolean": [4]}), csv_text(DS_H, ds).encode("gb18030"))


def _xlsx(kind: str, path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    if kind == "xlsx_empty":
        pass
    elif kind == "xlsx_two_sheets":
        ws.title = "说明"
        ws.append(["本表为派出所基础信息"])
        ws2 = wb.create_sheet("派出所")
        ws2.append(ST_H)
        for r in REGISTER:
            ws2.append([int(x) if x.isdigit() else x for x in r])
    elif kind == "xlsx_serial":
        ws.title = "警情"
        ws.append(INC_H)
        ws.append(["J000001", "S001", 45005.5868055556, None, 45005.59375, None, "盗窃", "派出所", "否"])
        ws.append(["J000002", "S001", 45005, None, None, None, "盗窃", "派出所", 0])
    elif kind == "xlsx_truncated":
        buf = io.BytesIO()
        ws.append(ST_H)
        for r in REGISTER:
            ws.append(r)
        wb.save(buf)
        data = buf.getvalue()
        path.write_bytes(data[: len(data) // 2])
        return
    wb.save(path)


def _parquet_truncated(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({h: [r[i] for r in [inc(1), inc(2)]] for i, h in enumerate(INC_H)}), buf)
    data = buf.getvalue()
    path.write_bytes(data[: len(data) - 40])


def write_all(out: Path = HERE) -> list[Path]:
    build()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    (out / "_register_stations.csv").write_text(csv_text(ST_H, REGISTER), encoding="utf-8")
    for name, data in WRITERS.items():
        p = out / name
        if isinstance(data, bytes):
            p.write_bytes(data)
        elif data == "parquet_truncated":
            _parquet_truncated(p)
        else:
            _xlsx(data, p)
        written.append(p)
    return written


build()

if __name__ == "__main__":
    files = write_all()
    print(f"wrote {len(files)} files, {len(CASES)} cases to {HERE}")
