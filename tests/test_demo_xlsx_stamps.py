"""The demo stations workbook carries no wall-clock stamp (same world, same bytes)."""

import zipfile

import pandas as pd

from evalkit.demo.exports import _XLSX_STAMP, _fix_xlsx_stamps


def test_workbook_stamps_are_fixed(tmp_path):
    path = tmp_path / "stations.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        pd.DataFrame({"派出所编码": ["A1"], "人口": [3]}).to_excel(xw, index=False)
    with zipfile.ZipFile(path) as z:
        assert any(i.date_time != _XLSX_STAMP for i in z.infolist())  # the writer stamps the clock
    _fix_xlsx_stamps(path)
    with zipfile.ZipFile(path) as z:
        assert {i.date_time for i in z.infolist()} == {_XLSX_STAMP}
        core = z.read("docProps/core.xml").decode()
    assert core.count("2020-01-01T00:00:00Z") == 2  # created and modified
    assert pd.read_excel(path).to_dict("list") == {"派出所编码": ["A1"], "人口": [3]}
