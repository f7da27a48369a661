"""Words from a spread sample of a large CSV (ingest/sampled.py): the value maps are built from
stretches of the file, the stage marks the rows whose word value a map misses, and those rows are
parsed again with complete maps. The result must be what the words of the whole file give: the same
accepted rows in the same storage order and the same quarantine (file rows, reasons, details, raw
text), on one DuckDB thread (serial pass) and on two (parallel pass), whether the sample saw almost
nothing or nearly everything."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.ingest import core, sampled
from test_ingest_parallel import REG_HEAD, _incidents, _run

# two stations named 河口派出所 (an ambiguous name), one reachable by its full unit name only
REGISTER_ROWS = ["S001,青石路派出所,青石区,江城市,某省,城区,52000,30,40,0",
                 "S002,河口派出所,青石区,江城市,某省,农村,18000,12,25,14",
                 "S003,东湖派出所,东湖区,江城市,某省,城乡结合,26000,15,30,6",
                 "S004,河口派出所,东湖区,江城市,某省,农村,9000,8,10,9"]
FORMS = ("S001", "青石路派出所", "S002 ", "\u3000S003", "江城市公安局东湖区分局东湖派出所", "河口派出所", "S004")


def _station(i: int) -> str:
    if i == 45_001:
        return "只出现一次派出所"  # a value seen on one row only, late in the file: unknown station
    if i % 1000 == 4:
        return "X999"
    return FORMS[i % len(FORMS)] if i < 30_000 else FORMS[(i // 7) % 3]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("sampled")
    reg = d / "register.csv"
    reg.write_text(REG_HEAD + "".join(r + "\n" for r in REGISTER_ROWS), encoding="utf-8")
    return reg, _incidents(d / "incidents.csv", 60_000, _station)


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
    return (*_run(tmp_path, name, files[0], files[1], threads, monkeypatch), settled)


@pytest.mark.parametrize("threads", [1, 2])
def test_sampled_words_give_what_the_whole_file_gives(tmp_path, files, monkeypatch, threads):
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
        if name == "tiny":  # the sample saw a few rows: most rows were parsed again
            assert n_again > 20_000
        else:  # the spread sample saw every frequent value (a rare one may be missed)
            assert n_again < 100


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
    assert sampled.usable(src, ("incident_id",)) is (path.stat().st_size >= sampled.SAMPLE_MIN_BYTES)
    assert not sampled.usable(src, ())


def test_missed_sql_names_every_value_map():
    joins = ["LEFT JOIN _ek_map_station ms ON ms.v = v_station_id",
             "LEFT JOIN _ek_map_w_handled_by ON _ek_map_w_handled_by.v = v_handled_by"]
    assert sampled.missed_sql(joins) == ("(v_station_id IS NOT NULL AND ms.v IS NULL) OR "
                                        "(v_handled_by IS NOT NULL AND _ek_map_w_handled_by.v IS NULL)")
    assert sampled.missed_sql([]) is None
    with pytest.raises(AssertionError):
        sampled.missed_sql(["JOIN x ON y"])
