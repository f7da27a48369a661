"""The optional station adjacency table (相邻派出所): one hand-made CSV with Chinese headers through the
generic ingest; rows in = accepted + quarantined, both ids matched to the register."""

from __future__ import annotations

import pytest

from _exports import write_csv, write_register
from evalkit.estimators.spillover import check_adjacency
from evalkit.ingest import ingest
from evalkit.ingest.loads import reconcile
from evalkit.warehouse import connect, live_facts

HEADER = ["序号", "派出所编码", "相邻派出所编码", "是否接壤", "所址距离（公里）"]
ROWS = [
    [1, "441502001", "441502002", "是", "3.2"],
    [2, "441502002", "441502001", "是", "3.2"],   # the other direction: allowed, a distinct row
    [3, "441502001", "441502001", "否", "0"],     # self_pair
    [4, "441502001", "999", "是", "1"],            # unknown_station (neighbour)
    [5, "441502001", "441502002", "是", "3.2"],   # duplicate_id
    [6, "441581003", "441502001", "也许", "2"],    # bad_boolean
    [7, "441581003", "441502002", "否", "x"],      # bad_number
    [8, "441581003", "441581004", "", ""],         # optional columns empty: unknown (NULL), accepted
]


@pytest.fixture()
def wh(tmp_path):
    path = tmp_path / "wh.duckdb"
    ingest("stations", write_register(tmp_path / "reg.xlsx"), warehouse=path)
    return path


def test_adjacency_ingest(wh, tmp_path):
    con = connect(wh, read_only=True)
    try:
        assert "adjacency" not in live_facts(con)["rows"]  # optional: listed only when it holds rows
    finally:
        con.close()
    f = write_csv(tmp_path / "相邻派出所.csv", HEADER, ROWS)
    rep = ingest("adjacency", f, warehouse=wh, accept_unmatched=True)
    assert rep.rows_in == len(ROWS) == rep.rows_accepted + rep.rows_quarantined
    assert dict(rep.quarantined_by_reason) == {"self_pair": 1, "unknown_station": 1, "duplicate_id": 1,
                                               "bad_boolean": 1, "bad_number": 1}
    con = connect(wh, read_only=True)
    try:
        got = con.execute("SELECT station_id, neighbor_id, shared_border, distance_km FROM adjacency "
                          "ORDER BY 1, 2").fetchall()
        assert got == [("441502001", "441502002", True, 3.2), ("441502002", "441502001", True, 3.2),
                       ("441581003", "441581004", None, None)]
        assert reconcile(con)["ok"].all()
        assert live_facts(con)["rows"]["adjacency"] == 3
        pairs = check_adjacency(con.execute("SELECT station_id, neighbor_id FROM adjacency").df())
        assert len(pairs) == 4  # symmetric: both directions of the two pairs
    finally:
        con.close()
