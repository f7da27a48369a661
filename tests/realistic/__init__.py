"""Realistic county-bureau exports, written by the tests themselves (not by evalkit's demo writer).

Each writer puts files into a folder (a pytest ``tmp_path``) the way a city bureau hands them over:
title and note rows above the headers, merged title cells, two-row headers, 序号 columns, trailing
spaces and full-width brackets in headers, GB18030 text, full unit names, mixed date formats, Excel
serials, month-only dates, personal data in free text, hidden sheets, formula cells without cached
values, mixed line endings and stray quotes. Every case carries its expected outcome.

Modules: :mod:`realistic.files` (CSV/XLSX byte-level writers), :mod:`realistic.county` (the
临江市 register and the messy value formatters), :mod:`realistic.exports` (the cases with their
expectations), :mod:`realistic.synthetic` (a county with a planted reform effect, for the
end-to-end test).
"""
