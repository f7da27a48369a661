"""The corpus: each function writes one realistic export into a folder and returns a :class:`Case`
with its expected outcome (accepted rows, quarantine counts by reason, or the exit code and the
words of the one-line error)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from realistic.county import (
    BUREAU,
    CITY,
    IDS,
    NAMES,
    PHONES,
    PROVINCE,
    Station,
    citizen_id,
    full_name,
    messy_date,
    messy_datetime,
    month_only,
    stations,
    unit_forms,
)
from realistic.files import Sheet, write_csv, write_xlsx

# Reason codes of issue 12's new quarantine cases (one place to read them).
AMBIGUOUS = "ambiguous_station"
UNMATCHED = "unknown_station"
ID_IN_KEY = "id_number_in_key"
FORMULA = "formula_without_value"
NO_DAY = "date_without_day"

AREA_ZH = {"urban": "城区", "rural": "农村", "mixed": "城乡结合"}
# incident categories as unit systems name them → the registry id they must map to (never "other")
INCIDENT_CATEGORIES = {"电信网络诈骗": "fraud", "盗窃": "theft", "打架斗殴": "fight", "交通事故": "traffic",
                       "婚姻家庭纠纷": None, "物业纠纷": None}
RESULTS = {"调解成功": True, "调解不成功": False, "正在调解": None}


@dataclass
class Case:
    name: str
    table: str
    files: list[Path]
    args: list[str] = field(default_factory=list)  # extra CLI arguments (--set, --sheet, …)
    exit_code: int = 0
    accepted: int | None = None
    reasons: dict[str, int] = field(default_factory=dict)  # quarantined rows by reason
    error: tuple[str, ...] = ()  # words the one-line error (or the failure output) must contain
    register: str | None = "codes"  # which register must be loaded first (see ``register_files``)
    check: Callable | None = None  # extra check on the open warehouse connection


# ------------------------------------------------------------------ registers
def _reg_rows(sts: list[Station], cols: list[str]) -> list[list[object]]:
    get = {
        "序号": lambda i, s: i + 1, "code": lambda i, s: s.code, "name": lambda i, s: s.name,
        "branch": lambda i, s: s.branch, "county": lambda i, s: s.county, "wan": lambda i, s: s.wan,
        "pop": lambda i, s: s.population, "area": lambda i, s: AREA_ZH[s.area_type],
        "officers": lambda i, s: 10 + i % 7, "area_km2": lambda i, s: f"{12.5 + i:.1f}", "note": lambda i, s: "",
    }
    return [[get[c](i, s) for c in cols] for i, s in enumerate(sts)]


def _check_register(sts: list[Station], *, city: str | None = None) -> Callable:
    def check(con):
        got = dict(con.execute("SELECT name, population FROM stations").fetchall())
        assert got == {s.name: s.population for s in sts}, got
        if city:
            assert {r[0] for r in con.execute("SELECT DISTINCT city FROM stations").fetchall()} == {city}
    return check


def register_title_rows(d: Path, *, with_defaults: bool = True) -> Case:
    """XLSX: merged title row, a note row, a blank row, headers with trailing spaces and 万人; no
    city, province or area type (a city bureau's export)."""
    sts = stations(8)
    head = ["序号", "单位代码 ", "单位名称", "所属分局", "辖区面积（平方公里）", "辖区人口（万人）", "民警人数", "备注"]
    rows = [["临江市公安局派出所基本情况统计表"], ["填报单位：临江市公安局　　统计时间：2024年12月"], [], head,
            *_reg_rows(sts, ["序号", "code", "name", "branch", "area_km2", "wan", "officers", "note"])]
    f = write_xlsx(d / "派出所基本情况.xlsx", [Sheet("Sheet1", rows, merged=["A1:H1", "A2:H2"])])
    if with_defaults:
        return Case("register_title_rows", "stations", [f], accepted=8, register=None,
                    args=["--set", f"city={CITY}", "--set", f"province={PROVINCE}", "--set", "area_type=urban"],
                    check=_check_register(sts, city=CITY))
    return Case("register_missing_columns", "stations", [f], accepted=8, register=None,
                check=_check_register(sts))


def register_two_row_header_csv(d: Path) -> Case:
    """GB18030 CSV: title row, group row, header row with full-width brackets, 辖区类型 in Chinese."""
    sts = stations(8)
    rows = [["临江市派出所名册（2024年）", "", "", "", "", ""],
            ["序号", "单位信息", "", "辖区情况", "", "警力"],
            ["", "派出所名称", "单位编码", "常住人口（万人）", "辖区类型", "民警数"],
            *_reg_rows(sts, ["序号", "name", "code", "wan", "area", "officers"])]
    f = write_csv(d / "派出所名册.csv", rows, encoding="gb18030")

    def check(con):
        _check_register(sts)(con)
        got = dict(con.execute("SELECT station_id, area_type FROM stations").fetchall())
        assert got == {s.code: s.area_type for s in sts}, got
    return Case("register_two_row_header_csv", "stations", [f], accepted=8, register=None, check=check)


def register_merged_two_row_xlsx(d: Path) -> Case:
    """XLSX two-row header with merged cells: 序号 over two rows, 单位 over 代码/名称."""
    sts = stations(8)
    rows = [["序号", "单位", None, "辖区人口（万人）", "所属区县"], [None, "代码", "名称", None, None],
            *_reg_rows(sts, ["序号", "code", "name", "wan", "county"])]
    f = write_xlsx(d / "名册_合并表头.xlsx", [Sheet("派出所", rows, merged=["A1:A2", "B1:C1", "D1:D2", "E1:E2"])])
    return Case("register_merged_two_row_xlsx", "stations", [f], accepted=8, register=None,
                check=_check_register(sts))


def register_hidden_sheet(d: Path) -> Case:
    """The first sheet is hidden (an old list kept for formulas); the visible one is the register."""
    sts = stations(8)
    old = [["派出所编码", "派出所名称", "人口"], ["331099510000", "废弃派出所", 1000], ["331098510000", "旧城派出所", 2000]]
    rows = [["派出所编码", "派出所名称", "人口（人）"], *_reg_rows(sts, ["code", "name", "pop"])]
    f = write_xlsx(d / "名册_隐藏页.xlsx", [Sheet("旧名册", old, hidden=True), Sheet("名册", rows)])
    return Case("register_hidden_sheet", "stations", [f], accepted=8, register=None, check=_check_register(sts))


def register_names_only(d: Path) -> Case:
    """UTF-8 with BOM, no code column: the station key is the name (trailing space in the header)."""
    sts = stations(8)
    rows = [["序号", "派出所 ", "所属区县", "人口(人)"], *_reg_rows(sts, ["序号", "name", "county", "pop"])]
    f = write_csv(d / "派出所清单.csv", rows, encoding="utf-8-sig")
    return Case("register_names_only", "stations", [f], accepted=8, register=None, check=_check_register(sts))


def register_with_contacts(d: Path) -> Case:
    """Counties and notes written with a contact person and numbers in every form, as in many
    hand-kept registers: accepted, and no name, phone or ID number stored or printed."""
    sts = stations(8)
    rows = [["派出所编码", "派出所名称", "所属区县", "常住人口"]]
    for i, s in enumerate(sts):
        county = f"{s.county}（联系人{NAMES[i % 4]} {PHONES[i % len(PHONES)]}）" if i % 2 else s.county
        rows.append([s.code, s.name, county, s.population])
    f = write_csv(d / "名册_联系人.csv", rows, encoding="gb18030")
    return Case("register_with_contacts", "stations", [f], accepted=8, register=None, check=_check_register(sts))


def register_files(d: Path, kind: str = "codes") -> list[Path]:
    """A complete register to load before the other tables (every column present, population in
    persons, so it depends on no register feature): ``codes`` (8 stations) or ``ambiguous`` (plus a
    second 城关派出所 in 临溪县 with another code)."""
    sts = stations(8)
    rows = [["派出所编码", "派出所名称", "所属区县", "所属地市", "省份", "辖区类型", "常住人口"],
            *[[s.code, s.name, s.county, CITY, PROVINCE, AREA_ZH[s.area_type], s.population] for s in sts]]
    if kind == "ambiguous":
        rows.append(["331031510000", "城关派出所", "临溪县", CITY, PROVINCE, "农村", 21000])
    return [write_csv(d / f"register_{kind}.csv", rows, encoding="utf-8")]


# ------------------------------------------------------------------ incidents
def incident_rows(sts: list[Station], n: int, *, seed: int, start: dt.datetime = dt.datetime(2023, 1, 1),
                  days: int = 365, id_prefix: str = "J") -> list[list[object]]:
    """``n`` clean incident rows: 序号, 警情编号, 报警时间, 到达时间, 管辖单位, 警情类别, 报警人, 联系电话,
    简要警情 — unit names in every form, dates in mixed formats, personal data in the last three."""
    rng = random.Random(seed)
    cats = list(INCIDENT_CATEGORIES)
    rows = []
    for i in range(n):
        st = sts[i % len(sts)]
        t = start + dt.timedelta(minutes=rng.randrange(days * 24 * 60))
        arr = t + dt.timedelta(minutes=rng.randint(3, 40))
        unit = unit_forms(st)[(i // len(sts)) % len(unit_forms(st))]
        who, phone = NAMES[i % len(NAMES)], PHONES[i % len(PHONES)]
        text = f"报警人{who}称其在{st.short}附近被骗，联系电话{phone}，身份证{IDS[i % len(IDS)]}"
        rows.append([i + 1, f"{id_prefix}{t:%Y%m%d}{i:05d}", messy_datetime(t, i), messy_datetime(arr, i + 1) if i % 9 else "",
                     unit, cats[i % len(cats)], who, phone, text])
    return rows


INCIDENT_HEAD = ["序号", "警情编号", "报警时间", "到达时间", "管辖单位", "警情类别", "报警人", "联系电话", "简要警情"]
# the same export from a system that uses the older headers (所属派出所, 接警时间, 到场时间)
PLAIN_HEAD = ["序号", "警情编号", "接警时间", "到场时间", "所属派出所", "警情类别", "报警人", "联系电话", "简要警情"]


def incidents_gb18030(d: Path) -> Case:
    """200 rows in GB18030 with full unit names, mixed dates, categories as systems name them, and
    three bad rows: a citizen ID as incident id, an unknown unit (0.5 %), a date that is free text."""
    sts = stations(8)
    rows = incident_rows(sts, 200, seed=1)
    rows[10][1] = citizen_id("33010219850312004")
    rows[20][4] = f"{BUREAU}城南分局港区派出所"
    rows[30][2] = f"报警人{NAMES[0]}称昨晚，电话{PHONES[0]}"
    f = write_csv(d / "警情_2023.csv", [INCIDENT_HEAD, *rows], encoding="gb18030")

    def check(con):
        cats = dict(con.execute("SELECT category, count(*) FROM incidents GROUP BY ALL").fetchall())
        assert "other" not in cats, cats
        assert cats["fraud"] == sum(1 for i, r in enumerate(rows) if r[5] == "电信网络诈骗" and i not in (10, 20, 30))
        n_st = con.execute("SELECT count(DISTINCT station_id) FROM incidents").fetchone()[0]
        assert n_st == 8
    return Case("incidents_gb18030", "incidents", [f], accepted=197,
                reasons={ID_IN_KEY: 1, UNMATCHED: 1, "bad_datetime": 1}, check=check)


def incidents_unmatched(d: Path, *, accept: bool = False) -> Case:
    """6 % of the rows name units that are not in the register: the command fails with the top
    unmatched names and counts, unless ``--accept-unmatched``."""
    sts = stations(8)
    rows = incident_rows(sts, 100, seed=2)
    for i in (5, 15, 25, 35):
        rows[i][4] = f"{BUREAU}城南分局港区派出所"
    for i in (45, 55):
        rows[i][4] = "临溪县公安局白鹭派出所"
    f = write_csv(d / "警情_未匹配.csv", [INCIDENT_HEAD, *rows], encoding="gb18030")
    if accept:
        return Case("incidents_unmatched_accepted", "incidents", [f], args=["--accept-unmatched"], accepted=94,
                    reasons={UNMATCHED: 6})
    return Case("incidents_unmatched_fails", "incidents", [f], exit_code=1, accepted=0,
                error=("警情_未匹配.csv", "6 of 100 rows", "临江市公安局城南分局港区派出所 (4)",
                       "临溪县公安局白鹭派出所 (2)", "--accept-unmatched"))


def incidents_ambiguous(d: Path) -> Case:
    """Two registered 城关派出所 (city and county): a bare name is ambiguous, codes are not."""
    sts = stations(8)
    rows = incident_rows(sts, 200, seed=3)
    for r in rows:  # every bare or prefixed form of 城关 would be ambiguous: codes instead
        if r[4] in unit_forms(sts[0]):
            r[4] = sts[0].code
    rows[7][4] = "城关派出所"

    def check(con):
        detail = con.execute(f"SELECT detail FROM quarantine WHERE reason = '{AMBIGUOUS}'").fetchone()[0]
        assert sts[0].code in detail and "331031510000" in detail, detail
    f = write_csv(d / "警情_重名.csv", [INCIDENT_HEAD, *rows], encoding="gb18030")
    return Case("incidents_ambiguous", "incidents", [f], accepted=199, reasons={AMBIGUOUS: 1},
                register="ambiguous", check=check)


def incidents_personal_data_in_values(d: Path) -> Case:
    """Category cells holding a caller's name, phones and ID numbers in every written form, and an
    incident id that is an ID number with an X check digit (refused for its row)."""
    rows = incident_rows(stations(8), 20, seed=8)
    forms = [f"报警人{NAMES[0]}求助，电话{PHONES[2]}", f"当事人{NAMES[1]}（身份证{IDS[0]}）",
             f"联系人{NAMES[2]} {PHONES[3]}", f"求助 {PHONES[4]} 身份证 {IDS[1]}", f"身份证{IDS[2]}，手机{PHONES[1]}"]
    for k, text in enumerate(forms):
        rows[2 + 3 * k][5] = text
    rows[19][1] = "33010219900101008X"
    f = write_csv(d / "警情_个人信息.csv", [INCIDENT_HEAD, *rows], encoding="gb18030")
    return Case("incidents_personal_data_in_values", "incidents", [f], accepted=19, reasons={ID_IN_KEY: 1})


def incidents_month_only_dates(d: Path) -> Case:
    """Two 报警时间 cells give only a month (2023年3月, 2023.03): a day is required here."""
    rows = incident_rows(stations(8), 30, seed=7)
    rows[4][2] = "2023年3月"
    rows[17][2] = "2023.03"
    f = write_csv(d / "警情_缺日.csv", [INCIDENT_HEAD, *rows], encoding="gb18030")
    return Case("incidents_month_only_dates", "incidents", [f], accepted=28, reasons={NO_DAY: 2})


def incidents_line_endings(d: Path) -> Case:
    """A file edited on Windows and Linux: CRLF and LF endings alternate."""
    rows = incident_rows(stations(8), 50, seed=4)
    f = write_csv(d / "警情_换行.csv", [INCIDENT_HEAD, *rows], encoding="utf-8", endings=("\r\n", "\n", "\n"))
    return Case("incidents_line_endings", "incidents", [f], accepted=50)


def incidents_stray_quotes(d: Path) -> tuple[Case, dict[int, str]]:
    """Stray quotes inside unquoted fields: each physical line is one record. Returns the case and
    the file rows (header = row 1) that hold a stray quote; those rows may be read or quarantined
    by row with a reason, every other row is accepted."""
    from realistic.files import csv_line

    rows = incident_rows(stations(8), 50, seed=5)
    lines: list[object] = [INCIDENT_HEAD, *rows]
    stray = {}
    for i, cat in ((9, '物业"纠纷'), (19, '"电信网络诈骗'), (29, '盗窃"')):
        r = list(rows[i])
        r[5] = "CAT"
        r[8] = "简要警情略"
        lines[i + 1] = csv_line(r).replace("CAT", cat)
        stray[i + 2] = cat
    f = write_csv(d / "警情_引号.csv", lines, encoding="utf-8")
    return Case("incidents_stray_quotes", "incidents", [f]), stray


def incidents_formulas(d: Path) -> tuple[Case, list[int]]:
    """XLSX whose 到达时间 holds formulas (=C5+0.004) never calculated: no cached values. Also a
    hidden helper sheet. Returns the case and the sheet rows with formulas."""
    sts = stations(8)
    head = ["警情编号", "所属派出所", "接警时间", "到场时间", "警情类别"]
    body = []
    for i in range(20):
        t = dt.datetime(2023, 5, 1, 8) + dt.timedelta(hours=7 * i)
        body.append([f"X{i:04d}", full_name(sts[i % 8]), t, t + dt.timedelta(minutes=12), "盗窃"])
    frows = [4, 9, 15]  # sheet rows (header = row 1)
    for r in frows:
        body[r - 2][3] = f"=C{r}+0.004"
    f = write_xlsx(d / "警情_公式.xlsx", [Sheet("计算", [["a", "b"], ["=1+1", 2]], hidden=True), Sheet("警情", [head, *body])])
    return Case("incidents_formulas", "incidents", [f]), frows


def incidents_monthly_with_gap(d: Path, *, gap_station: int = 1, gap: tuple[int, int] = (4, 9)) -> tuple[Case, Station]:
    """Twelve monthly exports of 2024; one station is missing from months ``gap`` (it stopped exporting)."""
    sts = stations(8)
    files = []
    total = 0
    for m in range(1, 13):
        live = [s for k, s in enumerate(sts) if not (k == gap_station and gap[0] <= m <= gap[1])]
        rows = []
        for k, s in enumerate(live):
            for j in range(6):
                t = dt.datetime(2024, m, 1 + j * 4, 9 + k)
                rows.append([f"M{m:02d}{k}{j}{s.code[4:6]}", full_name(s), messy_datetime(t, j + k), "盗窃"])
        total += len(rows)
        files.append(write_csv(d / f"警情_2024年{m:02d}月.csv", [["警情编号", "所属派出所", "接警时间", "警情类别"], *rows],
                               encoding="gb18030"))
    return Case("incidents_monthly_gap", "incidents", files, accepted=total), sts[gap_station]


# ------------------------------------------------------------------ disputes and adoption
def disputes_ledger(d: Path) -> Case:
    """A 矛盾纠纷排查化解台账 as kept: title row, 调处结果 in words, no 民转刑 column, 当事人 names."""
    sts = stations(8)
    rng = random.Random(6)
    results = list(RESULTS)
    kinds = ["婚姻家庭纠纷", "邻里纠纷", "物业纠纷", "劳资纠纷"]
    rows = []
    for i in range(60):
        opened = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(360))
        res = results[i % 3]
        closed = "" if res == "正在调解" else messy_date(opened + dt.timedelta(days=rng.randint(1, 30)), i + 1)
        rows.append([i + 1, f"MD2023{i:04d}", full_name(sts[i % 8]), messy_date(opened, i), kinds[i % 4],
                     f"{NAMES[i % 4]}、{NAMES[(i + 1) % 4]}", res, closed])
    head = ["序号", "登记编号", "受理单位", "受理日期", "纠纷类型", "当事人", "调处结果", "办结日期"]
    f = write_xlsx(d / "矛盾纠纷台账.xlsx", [Sheet("台账", [["临江市矛盾纠纷排查化解工作台账"], head, *rows], merged=["A1:H1"])])

    def check(con):
        esc = con.execute("SELECT count(*) FROM disputes WHERE escalated IS NOT NULL").fetchone()[0]
        assert esc == 0, "a ledger without 民转刑 must leave escalated unknown, never 'no'"
        # three distinct states: resolved (调解成功), unresolved with a closing date (调解不成功), and
        # open (正在调解): no closing date and never counted as resolved
        state = con.execute("SELECT count(*) FILTER (resolved), "
                            "count(*) FILTER (resolved = FALSE AND closed_on IS NOT NULL), "
                            "count(*) FILTER (resolved IS DISTINCT FROM TRUE AND closed_on IS NULL) "
                            "FROM disputes").fetchone()
        assert state == (20, 20, 20), state
        fam = con.execute("SELECT count(*) FROM disputes WHERE category = 'family'").fetchone()[0]
        assert fam == 15
    return Case("disputes_ledger", "disputes", [f], accepted=60, check=check)


def adoption_month_only(d: Path) -> Case:
    """改革项目 / 启动时间 with month-only dates (2023年1月, 2023-01, 2023.01) and full unit names."""
    sts = stations(8)
    months = [(2023, 1), (2023, 1), (2023, 7), (2024, 1)]
    rows = [["临江市公安局“两队一室”改革推进情况"], ["序号", "单位名称", "改革项目", "启动时间"]]
    want = {}
    for i, st in enumerate(sts[:4]):
        y, m = months[i]
        rows.append([i + 1, full_name(st), "两队一室", month_only(y, m, i)])
        want[st.code] = dt.date(y, m, 1)
    f = write_xlsx(d / "改革推进情况.xlsx", [Sheet("Sheet1", rows, merged=["A1:D1"])])

    def check(con):
        got = dict(con.execute("SELECT station_id, adopted_on FROM reforms").fetchall())
        assert got == want, got
    return Case("adoption_month_only", "reforms", [f], accepted=4, check=check)


def adoption_csv(d: Path) -> Case:
    """CSV with 改革事项 / 实施时间, short names and 2023.01-style months."""
    sts = stations(8)
    rows = [["序号", "责任单位", "改革事项", "实施时间"]]
    for i, st in enumerate(sts[4:], start=1):
        rows.append([i, st.short, "两队一室", month_only(2022, 3 * i, 2)])
    f = write_csv(d / "改革台账.csv", rows, encoding="gb18030")
    return Case("adoption_csv", "reforms", [f], accepted=4)


SIMPLE_CASES = [register_title_rows, register_two_row_header_csv, register_merged_two_row_xlsx, register_hidden_sheet,
                register_names_only, register_with_contacts, incidents_gb18030, incidents_personal_data_in_values, incidents_unmatched, incidents_ambiguous,
                incidents_line_endings, incidents_month_only_dates, disputes_ledger, adoption_month_only, adoption_csv]
