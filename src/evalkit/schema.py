"""Canonical tables of the warehouse, their columns, types and Chinese header aliases.

This is the single source of truth for table layouts: the warehouse DDL, the ingest
header mapping and the demo world's raw exports are all generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # DuckDB type
    required: bool = True
    aliases: tuple[str, ...] = field(default_factory=tuple)  # Chinese / alternative headers
    zh: str = ""  # the header the demo world writes (first Chinese alias)


@dataclass(frozen=True)
class Table:
    name: str
    zh: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def ddl(self, table_name: str | None = None) -> str:
        cols = ",\n  ".join(f"{c.name} {c.sql_type}" for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {table_name or self.name} (\n  {cols}\n)"


def _c(name: str, sql_type: str, *aliases: str, required: bool = True) -> Column:
    return Column(name, sql_type, required, tuple(aliases), aliases[0] if aliases else name)


# Aliases: the header the demo world writes comes first; then the variants seen in bureau exports.
# Headers are compared after NFKC normalisation without spaces/brackets (see ingest.headers), and a
# unit in brackets (人口（万人）, 到场用时（分钟）) is read off before matching.
_STATION_CODE = ("单位代码", "单位编号", "机构代码", "机构编码", "派出所编号", "编码", "编号", "代码", "code", "id")
_STATION_NAME = ("单位名称", "单位", "机构", "机构名称", "名称", "所名")
_STATION_REF = (*_STATION_CODE, "管辖单位", "所属单位", "责任单位", "受理单位", "处警单位", "办理单位",
                "所属派出所", "管辖派出所", "派出所名称", "派出所", *_STATION_NAME)

STATIONS = Table(
    "stations", "派出所", ("station_id",),
    (
        _c("station_id", "VARCHAR", "派出所编码", "单位编码", "派出所代码", *_STATION_CODE),
        _c("name", "VARCHAR", "派出所名称", "单位名称", "派出所", "单位", "机构", "机构名称", "名称", "所名",
           required=False),
        _c("county", "VARCHAR", "所属区县", "区县", "县（区）", "县区", "区/县", "所属县区", "县市区", "所属县市区",
           required=False),
        _c("city", "VARCHAR", "所属地市", "地市", "城市", "市", "所属市", "所属城市", required=False),
        _c("province", "VARCHAR", "省份", "省", "所属省份", "省区市", required=False),
        _c("area_type", "VARCHAR", "辖区类型", "类型", "地区类型", "城乡类型", "区域类型", "辖区性质",
           required=False),
        _c("population", "INTEGER", "辖区常住人口", "常住人口", "人口", "辖区人口", "实有人口", "常住人口数",
           "人口数", required=False),
        _c("officers", "INTEGER", "民警数", "民警人数", "民警", "警力", required=False),
        _c("auxiliaries", "INTEGER", "辅警数", "辅警人数", "辅警", required=False),
        _c("villages", "INTEGER", "行政村数", "村数", "村社区数", required=False),
    ),
)

REFORMS = Table(
    "reforms", "改革实施", ("station_id", "reform"),
    (
        _c("station_id", "VARCHAR", "派出所编码", "单位编码", "派出所", "派出所名称", *_STATION_REF),
        _c("reform", "VARCHAR", "改革事项", "改革名称", "改革", "改革项目", "改革内容", "项目名称", "项目",
           "改革举措"),
        _c("adopted_on", "DATE", "实施日期", "启动日期", "实施时间", "启动时间", "开始时间", "实施年月",
           "启动年月", "推行时间", "推行日期", "开始日期", "试点时间"),
        # a station that stopped the reform (issue 17): off from the month of ended_on; empty = still running
        _c("ended_on", "DATE", "停止日期", "结束日期", "退出日期", "终止日期", "撤销日期", "停止时间",
           required=False),
        # the dose in the reform's own unit (e.g. the share of villages covered), for dose-response DiD
        _c("intensity", "DOUBLE", "覆盖比例", "实施强度", "覆盖率", "覆盖村比例", "强度", required=False),
    ),
)

INCIDENTS = Table(
    "incidents", "警情", ("incident_id",),
    (
        _c("incident_id", "VARCHAR", "警情编号", "接警编号", "警情号", "接警单号", "警情单号", "事件编号",
           "接警单编号", "编号", "id"),
        _c("station_id", "VARCHAR", "所属派出所编码", "派出所编码", "管辖单位编码", "所属派出所", "管辖派出所",
           "派出所", *(a for a in _STATION_REF if a not in ("编号", "id"))),
        _c("received_at", "TIMESTAMP", "接警时间", "报警时间", "受理时间", "报警日期", "接警日期时间",
           "报警日期时间"),
        _c("dispatched_at", "TIMESTAMP", "派警时间", "派警时刻", "派单时间", "出警时间", "指令下达时间",
           required=False),
        _c("arrived_at", "TIMESTAMP", "到场时间", "到达现场时间", "到达时间", "到现场时间", "现场到达时间",
           "到场时刻", required=False),
        _c("closed_at", "TIMESTAMP", "结警时间", "处置完毕时间", "办结时间", "处警结束时间", "结束时间",
           required=False),
        _c("category", "VARCHAR", "警情类别", "警情类型", "类别", "警情性质", "性质", "类型", "警情分类",
           "报警类别", "案由"),
        _c("handled_by", "VARCHAR", "处置力量", "处警单位类型", "处置方式", required=False),
        _c("is_case", "BOOLEAN", "是否立案", "立案", "立案情况", "是否刑事立案", required=False),
    ),
)

DISPUTES = Table(
    "disputes", "矛盾纠纷", ("dispute_id",),
    (
        _c("dispute_id", "VARCHAR", "纠纷编号", "登记编号", "矛盾纠纷编号", "案件编号", "编号", "id"),
        _c("station_id", "VARCHAR", "派出所编码", "受理单位编码", "所属派出所", "受理单位", "派出所",
           "调处单位", *(a for a in _STATION_REF if a not in ("编号", "id"))),
        _c("opened_on", "DATE", "受理日期", "登记日期", "受理时间", "登记时间", "排查日期", "排查时间"),
        _c("closed_on", "DATE", "办结日期", "化解日期", "办结时间", "化解时间", "调处日期", "结案日期",
           "调结日期", required=False),
        _c("category", "VARCHAR", "纠纷类型", "纠纷类别", "类别", "类型", "纠纷性质", "性质", "纠纷分类"),
        # outcome text (调解成功/调解不成功/正在调解 …) is read by ingest.values.RESOLVED_WORDS
        _c("resolved", "BOOLEAN", "是否化解", "化解", "调处结果", "调解结果", "处理结果", "化解情况",
           "调处情况", "化解结果", "办理结果"),
        # a ledger without this column leaves it unknown (NULL), never "no"
        _c("escalated", "BOOLEAN", "是否民转刑", "民转刑", "是否转刑事", "转刑事案件", required=False),
    ),
)

# ---- optional monthly report tables (月报) for the prevention index (see docs/prevention-index.md)
# One row per station and month: a station-month without a row is *missing*, never zero. Counts are
# whole numbers; money in yuan and hours may have decimals (DOUBLE). No personal data: these are
# station totals, and personal-data headers are refused as in every table.
_MONTH = ("月份", "统计月份", "年月", "月度", "统计期", "报表月份", "期间")


def _report(name: str, zh: str, *cols: Column) -> Table:
    return Table(name, zh, ("station_id", "month"), (
        _c("station_id", "VARCHAR", "派出所编码", "单位编码", "派出所", "派出所名称", *_STATION_REF),
        _c("month", "DATE", *_MONTH),
        *cols,
    ))


CASES = _report(
    "cases", "办案",
    _c("cases_opened", "INTEGER", "立案数", "立案", "刑事立案数", "案件立案数", "受立案数"),
    _c("cases_solved", "INTEGER", "破案数", "破案", "刑事破案数", "侦破数"),
    _c("loss_yuan", "DOUBLE", "案损", "案损金额", "损失金额", "涉案损失", "案件损失", "经济损失", required=False),
)
VISITS = _report(
    "visits", "走访",
    _c("households_visited", "INTEGER", "走访户数", "走访", "入户走访数", "走访群众户数", "走访数"),
)
HAZARDS = _report(
    "hazards", "风险隐患",
    _c("hazards_found", "INTEGER", "发现隐患数", "排查隐患数", "隐患数", "发现风险隐患数", "排查发现数"),
    _c("hazards_resolved", "INTEGER", "整改隐患数", "整改数", "已整改数", "化解隐患数", "消除隐患数"),
)
PATROLS = _report(
    "patrols", "巡逻",
    _c("patrol_hours", "DOUBLE", "巡逻时长", "巡逻小时数", "巡逻时间", "巡逻总时长", "巡逻"),
)
SURVEYS = _report(
    "surveys", "满意度",
    _c("surveyed", "INTEGER", "调查人数", "受访人数", "调查样本数", "回访人数", "样本数"),
    _c("satisfied", "INTEGER", "满意人数", "满意数", "表示满意人数"),
)
COMPLAINTS = _report(
    "complaints", "执法投诉",
    _c("complaints", "INTEGER", "投诉数", "执法投诉数", "投诉件数", "投诉"),
    _c("complaints_upheld", "INTEGER", "查实数", "属实数", "查实投诉数", "投诉属实数", required=False),
)
# (smaller, larger): a report row whose first count exceeds the second is quarantined (count_exceeds)
COUNT_BOUNDS: dict[str, tuple[tuple[str, str], ...]] = {
    "surveys": (("satisfied", "surveyed"),),
    "complaints": (("complaints_upheld", "complaints"),),
}
REPORT_TABLES: tuple[str, ...] = ("cases", "visits", "hazards", "patrols", "surveys", "complaints")

# ---- optional station adjacency (相邻派出所): one row per pair of neighbouring stations, for the
# spillover estimator (evalkit.estimators.spillover). A pair may be listed in one direction or both;
# both ids are matched against the station register (code or name). No personal data.
ADJACENCY = Table(
    "adjacency", "相邻派出所", ("station_id", "neighbor_id"),
    (
        _c("station_id", "VARCHAR", "派出所编码", "本所编码", "派出所代码", "单位编码", "派出所", "派出所名称", "本所"),
        _c("neighbor_id", "VARCHAR", "相邻派出所编码", "相邻派出所代码", "邻所编码", "相邻单位编码", "相邻派出所",
           "相邻派出所名称", "邻所", "接壤派出所"),
        # a file without these columns leaves them unknown (NULL), never "no" / zero
        _c("shared_border", "BOOLEAN", "是否接壤", "接壤", "共用边界", required=False),
        _c("distance_km", "DOUBLE", "所址距离", "距离", "所址间距离", "驻地距离", required=False),
    ),
)
#: tables listed in the warehouse summary only when they hold rows
OPTIONAL_TABLES: tuple[str, ...] = (*REPORT_TABLES, "adjacency")

# Headers ignored silently (row numbers of the export, not data).
IGNORED_HEADERS: tuple[str, ...] = ("序号", "编号序号", "行号", "no", "no.", "#", "备注序号")

TABLES: dict[str, Table] = {t.name: t for t in (STATIONS, REFORMS, INCIDENTS, DISPUTES, CASES, VISITS, HAZARDS,
                                                 PATROLS, SURVEYS, COMPLAINTS, ADJACENCY)}

# Headers that hold personal data: refused at ingest, never stored.
PERSONAL_DATA_HEADERS: tuple[str, ...] = (
    "姓名", "报警人", "报警人姓名", "当事人", "当事人姓名", "name_of_caller", "caller_name",
    "身份证号", "身份证号码", "公民身份号码", "证件号码", "id_number",
    "手机号", "手机号码", "联系电话", "电话", "报警电话", "phone", "phone_number",
    "住址", "家庭住址", "现住址", "户籍地址", "address", "home_address",
)

# Bookkeeping tables of the warehouse (not user data). Every ingested file is one *load*
# (``ingest_log.load_id``); its accepted rows carry the id in the data tables' ``load_id``
# column and its rejected rows in ``quarantine.load_id``, so a load can be replaced or forgotten
# as a whole. Forgotten/replaced loads stay in ``ingest_log`` with ``live = FALSE``.
LOAD_ID_COLUMN = "load_id"
META_DDL = [
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    """CREATE TABLE IF NOT EXISTS quarantine (
  table_name VARCHAR, source_file VARCHAR, source_row BIGINT, column_name VARCHAR,
  reason VARCHAR, detail VARCHAR, raw VARCHAR, ingested_at TIMESTAMP, load_id BIGINT
)""",
    """CREATE TABLE IF NOT EXISTS ingest_log (
  table_name VARCHAR, source_file VARCHAR, sha256 VARCHAR, rows_in BIGINT,
  rows_accepted BIGINT, rows_quarantined BIGINT, ingested_at TIMESTAMP,
  load_id BIGINT, source_path VARCHAR, rows_other BIGINT, live BOOLEAN DEFAULT TRUE,
  removed_at TIMESTAMP, removed_how VARCHAR
)""",
    # covered station-months per record table (see evalkit.coverage); n_records may be 0
    """CREATE TABLE IF NOT EXISTS coverage (
  table_name VARCHAR, station_id VARCHAR, period INTEGER, n_records BIGINT
)""",
]
# Columns added to bookkeeping tables after their first release: added to older warehouses on
# connect (``ALTER TABLE … ADD COLUMN IF NOT EXISTS``).
META_MIGRATIONS = [
    "ALTER TABLE quarantine ADD COLUMN IF NOT EXISTS load_id BIGINT",
    "ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS load_id BIGINT",
    "ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS source_path VARCHAR",
    "ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS rows_other BIGINT",
    "ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS live BOOLEAN DEFAULT TRUE",
    "ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS removed_at TIMESTAMP",
    "ALTER TABLE ingest_log ADD COLUMN IF NOT EXISTS removed_how VARCHAR",
    *(f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {LOAD_ID_COLUMN} BIGINT" for t in TABLES),
]
