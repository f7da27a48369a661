"""Words from a spread sample of a large CSV (ingest/sampled.py): the value maps are built from
stretches of the file, the stage marks the rows whose word value a map misses, and those rows are
parsed again with complete maps. The result must be what the words of the whole file give: the same
accepted rows in the same storage order and the same quarantine (file rows, reasons, details, raw
text), on one DuckDB thread (serial pass) and on two (parallel pass), whether the sample saw almost
nothing or nearly everything."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.ingest import core, ingest, sampled
from evalkit.warehouse import connect
from test_ingest_parallel import REG_HEAD, _incidents, _run

# two stations named 河口派出所 (an ambiguous name), one reachable by its full unit name only
REGISTER_ROWS = ["S001,青石路派出所,青石区,江城市,某省,城区,52000,30,40,0",
                 "S002,河口派出所,青石区,江城市,某省,农村,18000,12,25,14",
                 "S003,东湖派出所,东湖区,江城市,某省,城乡结合,26000,15,30,6",
                 "S004,河口派出所,东湖区,江城市,某省,农村,9000,8,10,9"]
FORMS = ("S001", "青石路派出所", "S002 ", "\u3000S003", "江城市公安局东湖区分局东湖派出所", "河口派出所", "S004")


def REGISTER_FILE(d: Path) -> Path:  # noqa: N802
    reg = d / "register.csv"
    reg.write_text(REG_HEAD + "".join(r + "\n" for r in REGISTER_ROWS), encoding="utf-8")
    return reg


def _station(i: int) -> str:
    if i == 45_001:
        return "只出现一次派出所"  # a value seen on one row only, late in the file: unknown station
    if i % 1000 == 4:
        return "X999"
    return FORMS[i % len(FORMS)] if i < 30_000 else FORMS[(i // 7) % 3]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("sampled")
    return REGISTER_FILE(d), _incidents(d / "incidents.csv", 60_000, _station)


@pytest.fixture(scope="module")
def export_like(tmp_path_factory, files) -> Path:
    """The same rows as a bureau writes them: a title row, CRLF line ends, quoted fields (one with the
    delimiter and doubled quotes inside)."""
    lines = files[1].read_text(encoding="utf-8").splitlines()
    out = ["江城市公安局警情数据导出（2023年3月）,,,,,,,,", lines[0]]
    for i, line in enumerate(lines[1:]):
        f = line.split(",")
        if i % 9 == 2:
            f[6] = '"' + f[6].replace('"', '""') + '"'
        if i % 97 == 5:
            f[7] = '"巡逻,""夜间"""'  # not a handled_by word: bad_value, with its raw text
        out.append(",".join(f))
    path = tmp_path_factory.mktemp("export") / "export.csv"
    path.write_bytes(("\r\n".join(out) + "\r\n").encode("utf-8"))
    return path


def _ingest(tmp_path, name, files, monkeypatch, threads: int, blocks: int | None, block_bytes: int = 32 << 10):
    """``blocks`` None: the words of the whole file (no sample)."""
    monkeypatch.setattr(sampled, "SAMPLE_MIN_BYTES", 1 << 62 if blocks is None else 0)
    monkeypatch.setattr(sampled, "BLOCKS", blocks or 1)
    monkeypatch.setattr(sampled, "BLOCK_BYTES", block_bytes)
    settled: list[int] = []
    real = core.settle_missed

    def spy(*a, **k):
        settled.append(real(*a, **k))
        return settled[-1]

    monkeypatch.setattr(core, "settle_missed", spy)
    read_back: list[int] = []  # rejected rows whose raw text was read back by line (late_dups)
    real_raw = core.raw_text
    monkeypatch.setattr(core, "raw_text", lambda *a, **k: read_back.append(real_raw(*a, **k)) or read_back[-1])
    return (*_run(tmp_path, name, files[0], files[1], threads, monkeypatch), settled, read_back)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind", ["plain", "export"])
def test_sampled_words_give_what_the_whole_file_gives(tmp_path, files, export_like, monkeypatch, threads, kind):
    files = files if kind == "plain" else (files[0], export_like)
    whole = _ingest(tmp_path, "whole", files, monkeypatch, threads, None)
    assert whole[4] == []  # no sample: no rows to parse again
    counts = whole[1]
    assert {"ambiguous_station", "unknown_station", "duplicate_id", "bad_value", "bad_boolean"} <= set(counts[3])
    assert counts[0] == 60_000 == counts[1] + counts[2]
    for name, blocks, size in (("tiny", 2, 300), ("spread", 64, 2048)):
        got = _ingest(tmp_path, name, files, monkeypatch, threads, blocks, size)
        assert got[0] == whole[0]  # the same pass (serial on one thread, parallel on two)
        assert got[1] == counts
        assert got[2] == whole[2]  # accepted rows, values and storage order
        assert got[3] == whole[3]  # quarantine: file rows, reasons, details, raw text, in order
        n_again = got[4][-1]  # the incidents (the register came first)
        # a file of one record a line: the duplicates were found after the stage and the rejected rows'
        # lines read back; an exported-looking one (quotes) had its keys scanned before the stage
        # (the register, a plain file too, comes first: no duplicates to read back)
        assert got[5][0] == 0 and (got[5][1:] and got[5][-1] >= 1 if kind == "plain" else len(got[5]) == 1)
        if name == "tiny":  # the sample saw a few rows: most rows were parsed again
            assert n_again > 20_000
        else:  # the spread sample saw every frequent value, not the one-row value
            assert 1 <= n_again < 100


def test_sampled_words_into_a_table_holding_rows(tmp_path, files, monkeypatch):
    # a second, overlapping file: its keys already stored are duplicates (the table's hashes are
    # intersected with the file's), found alike with and without a sample
    lines = files[1].read_text(encoding="utf-8").splitlines()
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("\n".join(lines[:30_001]) + "\n", encoding="utf-8")
    second.write_text("\n".join([lines[0], *lines[20_001:]]) + "\n", encoding="utf-8")
    got = []
    for blocks in (None, 2):
        monkeypatch.setattr(sampled, "SAMPLE_MIN_BYTES", 1 << 62 if blocks is None else 0)
        monkeypatch.setattr(sampled, "BLOCKS", blocks or 1)
        monkeypatch.setattr(sampled, "BLOCK_BYTES", 300)
        con = connect(tmp_path / f"wh{blocks}" / "warehouse.duckdb")
        try:
            ingest("stations", files[0], con=con)
            ingest("incidents", first, con=con, study_window=("2020-01", "2024-12"))
            rep = ingest("incidents", second, con=con, study_window=("2020-01", "2024-12"))
            got.append((rep.rows_accepted, dict(rep.quarantined_by_reason),
                        con.execute("SELECT * EXCLUDE (load_id) FROM incidents ORDER BY rowid").fetchall(),
                        con.execute("SELECT source_file, source_row, reason, detail, raw FROM quarantine "
                                    "ORDER BY rowid").fetchall()))
        finally:
            con.close()
    assert got[0][1]["duplicate_id"] > 4_000  # the overlap's rows stored by the first load (and the file's own repeats)
    assert got[1] == got[0]


def test_a_varied_word_column_reads_the_whole_files_words(tmp_path, monkeypatch):
    # every row a different station spelling: a sample would leave most rows to be parsed again,
    # so the words come from a scan of the whole file (and nothing is parsed twice)
    csv = _incidents(tmp_path / "varied.csv", 5_000, lambda i: f"第{i}号未登记派出所")
    monkeypatch.setattr(sampled, "SAMPLE_MIN_BYTES", 0)
    monkeypatch.setattr(sampled, "BLOCKS", 64)
    monkeypatch.setattr(sampled, "BLOCK_BYTES", 4096)  # the whole file: 5,000 values, 5,000 spellings
    real, seen = core.settle_missed, []
    monkeypatch.setattr(core, "settle_missed", lambda *a, **k: seen.append(real(*a, **k)))
    con = connect(tmp_path / "wh" / "warehouse.duckdb")
    try:
        con.execute("SET threads = 2")
        ingest("stations", REGISTER_FILE(tmp_path), con=con)
        rep = ingest("incidents", csv, con=con, accept_unmatched=True, study_window=("2020-01", "2024-12"))
    finally:
        con.close()
    assert rep.quarantined_by_reason["unknown_station"] == 5_000
    assert seen == [0]  # the register's own file was sampled (4 rows); the incidents were not


def test_sample_rows_are_whole_records_from_all_over_the_file(tmp_path, monkeypatch):
    from evalkit.ingest.sources import open_source

    lines = ["导出时间：2024-01-05,,\n", "编号,名称,备注\n"]
    lines += [f"K{i},name{i},\"note, with comma\"\n" if i % 50 else f"K{i},name{i},\"two\nlines\"\n"
              for i in range(20_000)]
    path = tmp_path / "x.csv"
    path.write_text("".join(lines), encoding="utf-8")
    src = open_source(path, str(tmp_path), table_zh="警情", table="incidents")
    assert src.skip_lines == 2
    monkeypatch.setattr(sampled, "BLOCKS", 16)
    monkeypatch.setattr(sampled, "BLOCK_BYTES", 400)
    rows = sampled.sample_rows(src)
    assert rows and all(len(r) == 3 for r in rows)
    assert all(r[0].startswith("K") and r[1] == "name" + r[0][1:] for r in rows)  # no title/header, no cut records
    ids = sorted(int(r[0][1:]) for r in rows)
    assert ids[0] < 200 and ids[-1] > 19_500  # from the start to the end of the file
    assert not sampled.usable(src, ("incident_id",))  # 0.6 MB: below the threshold
    monkeypatch.setattr(sampled, "SAMPLE_MIN_BYTES", path.stat().st_size)
    assert sampled.usable(src, ("incident_id",)) and not sampled.usable(src, ())


def test_missed_sql_names_every_value_map():
    joins = ["LEFT JOIN _ek_map_station ms ON ms.v = v_station_id",
             "LEFT JOIN _ek_map_w_handled_by ON _ek_map_w_handled_by.v = v_handled_by"]
    assert sampled.missed_sql(joins) == ("(v_station_id IS NOT NULL AND ms.v IS NULL) OR "
                                        "(v_handled_by IS NOT NULL AND _ek_map_w_handled_by.v IS NULL)")
    assert sampled.missed_sql([]) is None
    with pytest.raises(AssertionError):
        sampled.missed_sql(["JOIN x ON y"])


@pytest.mark.parametrize("variant", ["title_crlf_tab_no_final_end", "lf_semicolon"])
def test_lines_read_back_as_the_reader_split_them(tmp_path, files, monkeypatch, variant):
    # the late path (no raw text in the stage: rejected and missed rows read back from their lines and
    # split by DuckDB) gives what the whole file's words give, on other shapes of a plain file
    lines = files[1].read_text(encoding="utf-8").splitlines()
    if variant == "title_crlf_tab_no_final_end":
        data = "江城市公安局警情数据导出\r\n" + "\r\n".join(ln.replace(",", "\t") for ln in lines)
    else:
        data = "\n".join(ln.replace(",", ";") for ln in lines) + "\n"
    path = tmp_path / f"{variant}.csv"
    path.write_bytes(data.encode("utf-8"))
    shaped = (files[0], path)
    whole = _ingest(tmp_path, "whole", shaped, monkeypatch, 2, None)
    late = _ingest(tmp_path, "late", shaped, monkeypatch, 2, 2, 300)
    assert late[5][1:] and late[5][-1] == whole[1][2]  # every rejected row's line read back
    assert late[4][-1] > 20_000  # a tiny sample: most rows parsed again from their lines
    assert late[1:4] == whole[1:4]  # counts, accepted rows in storage order, the quarantine with raw text
