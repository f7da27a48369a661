"""Reasons printed in a brief are cut at a word boundary, never mid-word."""

from evalkit.inference._refit import clip_text, short_reason


def test_long_reason_is_cut_at_a_word_with_an_ellipsis():
    text = "the covariance of the 18 event-study coefficients is singular " * 6
    out = clip_text(text, limit=80)
    assert len(out) <= 80 and out.endswith("…")
    assert text.startswith(out[:-1]) and text[len(out) - 1] == " "  # the cut falls on a space


def test_short_and_multiline_reasons():
    assert clip_text("first line\nsecond line") == "first line"
    assert clip_text("") == ""
    assert short_reason(ValueError("")) == "ValueError"
    assert short_reason(ValueError("x" * 300)).endswith("…")  # no space to cut at: hard cut, still marked
