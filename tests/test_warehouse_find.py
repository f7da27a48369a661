"""A notebook opened in JupyterLab runs in notebooks/: relative warehouse paths still resolve."""

from __future__ import annotations

from evalkit.warehouse import connect, find_existing


def test_relative_warehouse_found_from_notebooks_folder(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "notebooks").mkdir()
    connect(tmp_path / "data" / "warehouse.duckdb").close()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert find_existing("data/warehouse.duckdb") == tmp_path / "data" / "warehouse.duckdb"
    monkeypatch.chdir(tmp_path)
    assert find_existing("data/warehouse.duckdb").resolve() == (tmp_path / "data" / "warehouse.duckdb").resolve()
    assert str(find_existing("nowhere/x.duckdb")) == "nowhere/x.duckdb"  # missing: returned unchanged
