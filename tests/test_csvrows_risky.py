"""csvrows.risky against a plain reference (the whole file at once, the definitions of its
docstring), for every chunk size: blank lines, \\r\\n pairs and quoted lines cut across chunks."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from evalkit.ingest import csvrows
from evalkit.ingest.csvrows import risky

CHUNKS = [1, 2, 3, 7, 64, 1 << 19]


def reference(data: bytes, skip: int) -> bool | str:
    """``risky`` by its definition, on the whole file, one byte at a time."""
    ends = [i for i, b in enumerate(data) if b == 10]
    start = ends[skip - 1] if 0 < skip <= len(ends) else 0  # the \n ending the header line
    for p in range(start, len(data)):
        for blank in (b"\n\n", b"\n\r\n"):
            if data.startswith(blank, p) and data[p + len(blank):].strip():
                return "python"  # a blank line with text after it
    if any(line.count(b'"') % 2 for line in data.split(b"\n")):
        return "python"
    bare_cr = any(b == 13 and data[i + 1:i + 2] != b"\n" for i, b in enumerate(data))
    bare_lf = any(b == 10 and data[i - 1:i] != b"\r" for i, b in enumerate(data))
    return b'"' in data or bare_cr or (b"\r\n" in data and bare_lf)


def check(tmp_path: Path, monkeypatch, data: bytes, skip: int = 1) -> bool | str:
    """risky's answer, the same for every chunk size and equal to the reference's."""
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    want = reference(data, skip)
    for chunk in CHUNKS:
        monkeypatch.setattr(csvrows, "CHUNK_BYTES", chunk)
        got = risky(path, skip)
        assert (got, type(got)) == (want, type(want)), (data, skip, chunk)
    return want


CELLS = ["A1", "城关派出所", "2023-03-01 10:00", "", " ", '"盗窃"', '"a,b"', '"x ""y"""', '"多\n行"',
         '"多\r\n行"', 'a"b', '"未闭合', "\t"]
ENDS = [b"\n", b"\n", b"\n", b"\r\n", b"\r\n", b"\r", b""]


def generated(rng: random.Random) -> tuple[bytes, int]:
    """A small CSV: title rows (some blank), a header, rows with mixed endings, blank lines, quotes."""
    end = rng.choice(ENDS[:5])
    titles = [rng.choice(["报表标题,,", "", " ", '"标题"', "单位：起"]) for _ in range(rng.randrange(3))]
    lines = [*titles, "序号,警情编号,所属派出所"]
    for _ in range(rng.randrange(8)):
        lines.append(rng.choice(["", "", " ", ",".join(rng.choice(CELLS) for _ in range(3))]))
    out = b""
    for line in lines:
        out += line.encode() + (rng.choice(ENDS) if rng.random() < 0.2 else end)
    if rng.random() < 0.3:
        out += rng.choice([b"\n", b"\r\n", b"\n\n", b"\r\n\r\n", b" \n", b"\r"])
    return out, len(titles) + rng.choice([1, 1, 1, 0, 2])


def test_random_files_match_the_reference_at_every_chunk_size(tmp_path, monkeypatch):
    rng = random.Random(20261205)
    seen: dict[str, int] = {}
    for _ in range(300):
        data, skip = generated(rng)
        key = repr(check(tmp_path, monkeypatch, data, skip))
        seen[key] = seen.get(key, 0) + 1
    # every answer is common enough for the comparison to mean something
    assert set(seen) == {"'python'", "True", "False"} and min(seen.values()) >= 30, seen


@pytest.mark.parametrize("skip", [0, 1, 2, 3])
def test_byte_soup_matches_the_reference(tmp_path, monkeypatch, skip):
    rng = random.Random(skip)
    parts = [b"a", b",", b'"', b"\n", b"\n", b"\r\n", b"\r", b" ", b"\n\n", b"\n\r\n"]
    for _ in range(60):
        check(tmp_path, monkeypatch, b"".join(rng.choice(parts) for _ in range(rng.randrange(25))), skip)


def test_blank_line_on_a_chunk_boundary(tmp_path, monkeypatch):
    for data in (b"h\nr1\n" + b"\nr2\n", b"h\nr1\n\r" + b"\nr2\n", b"h\nr1\n" + b"\r\nr2\n"):
        path = tmp_path / "b.csv"
        path.write_bytes(data)
        monkeypatch.setattr(csvrows, "CHUNK_BYTES", 5)  # the first chunk ends at ``h\nr1\n``
        assert risky(path) == "python"
        assert check(tmp_path, monkeypatch, data) == "python"
    # the blank line right after the header, the header's \n the last byte of a chunk
    assert check(tmp_path, monkeypatch, b"h\n\nr1\n") == "python"


def test_crlf_cut_across_chunks(tmp_path, monkeypatch):
    crlf = b"h\r\nr1\r\nr2\r\n"
    path = tmp_path / "c.csv"
    path.write_bytes(crlf)
    for chunk in (2, 3, 4, 6):  # \r the last byte of a chunk, \n the first of the next
        monkeypatch.setattr(csvrows, "CHUNK_BYTES", chunk)
        assert risky(path) is False
    assert check(tmp_path, monkeypatch, crlf) is False
    assert check(tmp_path, monkeypatch, b"h\r\nr1\nr2\r\n") is True  # a bare \n among \r\n
    assert check(tmp_path, monkeypatch, b"h\r\nr1\rr2\r\n") is True  # a bare \r


def test_blank_lines_at_the_end_are_not_between_rows(tmp_path, monkeypatch):
    assert check(tmp_path, monkeypatch, b"h\nr1\nr2\n\n") is False
    assert check(tmp_path, monkeypatch, b"h\r\nr1\r\n\r\n \r\n\t\r\n") is False
    assert check(tmp_path, monkeypatch, b"h\nr1\n\n\n\nr2") == "python"


def test_blank_title_rows_above_the_header(tmp_path, monkeypatch):
    data = b"Title\n\n\xe5\x8d\x95\xe4\xbd\x8d\n\nh,x\nr1,1\nr2,2\n"
    assert check(tmp_path, monkeypatch, data, skip=5) is False
    assert check(tmp_path, monkeypatch, data, skip=3) == "python"  # header on line 3: line 4 is blank
    assert check(tmp_path, monkeypatch, data.replace(b"r1,1\n", b"r1,1\n\n"), skip=5) == "python"


def test_odd_quotes_cut_across_chunks(tmp_path, monkeypatch):
    assert check(tmp_path, monkeypatch, b'h\n1,"a\nb",2\n') == "python"  # a field spanning lines
    assert check(tmp_path, monkeypatch, b'h\n1,"a ""b""",2\n') is True
    assert check(tmp_path, monkeypatch, b'h\n1,"a') == "python"  # the last line, no line end
