"""Hardening of the run layer: params files, warehouse failures, outputs, escaping, batch workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.params import ParamsError, load_params

BASE = "reform: 两队一室\noutcomes: [incidents_fight]\n"


def _write(tmp_path: Path, text: str, name: str = "p.yaml", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def test_repeated_key_is_refused_with_key_and_lines(tmp_path):
    p = _write(tmp_path, BASE + "bootstrap: 0\nseed: 1\nbootstrap: 999\n")
    with pytest.raises(ParamsError) as exc:
        load_params(p)
    assert str(exc.value) == f"params file {p} repeats the key 'bootstrap' (line 3 and line 5): keep one"


def test_repeated_nested_key_is_refused(tmp_path):
    p = _write(tmp_path, BASE + "window:\n  start: 2019-01\n  start: 2020-01\n")
    with pytest.raises(ParamsError, match=r"repeats the key 'start' \(line 4 and line 5\)"):
        load_params(p)


@pytest.mark.parametrize(
    ("line", "key"),
    [("bootstrap: true", "bootstrap"), ("sensitivity: 1", "sensitivity"), ("seed: '7'", "seed"),
     ("alpha: true", "alpha"), ("wild_draws: 999.0", "wild_draws"), ("event_window: [-12, '24']", "event_window.1"),
     ("multiple_testing: 'yes'", "multiple_testing")],
)
def test_type_coercions_are_refused_with_key_named(tmp_path, line, key):
    p = _write(tmp_path, BASE + line + "\n")
    with pytest.raises(ParamsError) as exc:
        load_params(p)
    lines = str(exc.value).splitlines()
    assert lines[0] == f"invalid evaluation parameters in {p}:"
    assert len(lines) == 2 and lines[1].startswith(f"  - {key}: ")


def test_plain_values_still_load(tmp_path):
    p = _write(tmp_path, BASE + "bootstrap: 999\nalpha: 0.1\nsensitivity: false\nevent_window: [-6, 12]\n")
    params = load_params(p)
    assert (params.bootstrap, params.alpha, params.sensitivity, params.event_window) == (999, 0.1, False, (-6, 12))


def test_non_utf8_params_file_is_one_line(tmp_path):
    p = _write(tmp_path, "# 两队一室 评估\n" + BASE, encoding="gbk")
    with pytest.raises(ParamsError) as exc:
        load_params(p)
    assert str(exc.value) == f"params file {p} is not UTF-8: save it as UTF-8"


@pytest.mark.parametrize("bad", ["x" * 300, "a/b", "..", "a b", "名字", "a\\b"])
def test_unsafe_or_long_evaluation_id_is_refused(tmp_path, bad):
    p = _write(tmp_path, BASE + f"evaluation_id: '{bad}'\n")
    with pytest.raises(ParamsError) as exc:
        load_params(p)
    lines = str(exc.value).splitlines()
    assert len(lines) == 2
    if len(bad) > 100:
        assert lines[1] == "  - evaluation_id: String should have at most 100 characters"
    else:
        assert lines[1].startswith("  - evaluation_id: String should match pattern")


def test_invalid_yaml_is_one_line(tmp_path):
    p = _write(tmp_path, BASE + "title: [unclosed\n")
    with pytest.raises(ParamsError) as exc:
        load_params(p)
    assert str(exc.value).startswith(f"params file {p} is not valid YAML at line ")
    assert "\n" not in str(exc.value)


def test_batch_plan_reads_params_with_the_same_rules(tmp_path):
    from evalkit.batch.plan import plan

    p = _write(tmp_path, BASE + "seed: 1\nseed: 2\n", name="dup.yaml")
    (item,) = plan([str(p)])
    assert item.error == f"params file {p} repeats the key 'seed' (line 3 and line 4): keep one"
