"""The brief exporter is built once per process and reused (issue 15): every brief renders exactly as
it would with an exporter of its own, whatever was rendered before it."""

from __future__ import annotations

import threading

import nbformat
import pytest

from evalkit import export


def _notebook(evaluation_id: str, lang: str, synthetic: bool, title: str, body: str) -> nbformat.NotebookNode:
    v4 = nbformat.v4
    marker = {"evaluation_id": evaluation_id, "lang": lang, "synthetic": synthetic, "title": title}
    outputs = [v4.new_output("display_data", {export.BRIEF_MIME: marker, "text/plain": ""}),
               v4.new_output("display_data", {"text/html": body}),
               v4.new_output("display_data", {"text/markdown": f"## {title}\n\n*{body}*"})]
    return v4.new_notebook(cells=[v4.new_code_cell("x", outputs=outputs)])


BRIEFS = [
    _notebook("zh_case", "zh", True, "两队一室改革效果评估", "<p>打架斗殴 −12.3%</p>"),
    _notebook("en_case", "en", False, 'Evaluation "quoted" </style>', "<p>Fights -12.3%</p>"),
    _notebook("zh_real", "zh", False, "", "<table><tr><td>0.123</td></tr></table>"),
]


def _fresh(nb: nbformat.NotebookNode, monkeypatch: pytest.MonkeyPatch) -> str:
    with monkeypatch.context() as m:
        m.setattr(export, "_EXPORTERS", [])  # an exporter of its own, dropped afterwards
        return export.render_html(nb)


def test_a_reused_exporter_renders_each_brief_as_a_fresh_one(monkeypatch):
    alone = [_fresh(nb, monkeypatch) for nb in BRIEFS]
    export.warm_html()
    in_turn = [export.render_html(nb) for nb in [*BRIEFS, *BRIEFS[::-1]]]
    assert in_turn == alone + alone[::-1]
    assert "合成数据" in alone[0] and "Page " in alone[1] and "合成数据" not in alone[2]
    assert len(export._EXPORTERS) == 1


def test_briefs_rendered_from_two_threads_are_those_rendered_alone(monkeypatch):
    alone = [_fresh(nb, monkeypatch) for nb in BRIEFS]
    got: dict[int, str] = {}

    def render(i: int) -> None:
        got[i] = export.render_html(BRIEFS[i % len(BRIEFS)])

    threads = [threading.Thread(target=render, args=(i,)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert [got[i] for i in range(6)] == alone + alone
