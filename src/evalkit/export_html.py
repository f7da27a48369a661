"""The brief's HTML page as nbconvert's HTMLExporter writes it, in a fifth of the time (:mod:`evalkit.export`).

nbconvert's HTMLExporter renders its template, then reads the whole page into a BeautifulSoup tree to give
images without an alternative text nbconvert's and to make output areas focusable, and writes the tree out
again: 60 % of a brief's HTML time, growing with its tables. It also validates the notebook after each of its
twelve preprocessors. :func:`brief_exporter_class` makes the same two edits on the page as written and
validates once; a page it cannot edit plainly goes through nbconvert's own pass. Read into BeautifulSoup, its
page is nbconvert's page (tests/test_export_html.py); nbconvert is imported here only when the class is made.
"""

from __future__ import annotations

import copy
import re

_IMG_TAG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_DIV_TAG = re.compile(r"<div\b[^>]*>", re.IGNORECASE)
_BODY_TAG = re.compile(r"<body\b[^>]*>")
#: a tag with a "<" or ">" inside a quoted value (or a "<" outside one, or a quote left open): the patterns
#: above end a tag at its first ">" and would find a tag inside such a value, so the page is left to
#: nbconvert's own pass. Read tag by tag from each "<", quotes skipped whole; linear in the page's length.
_ANGLE_IN_TAG = re.compile(r"""</?[A-Za-z][^<>"']*(?:(?:"[^"]*"|'[^']*')[^<>"']*)*?(?:<|"[^"]*[<>]|'[^']*[<>])""")
#: elements whose content is not markup (or is hidden): a page with one is left to nbconvert's own pass
_RAW_TEXT = re.compile(r"<(?:style|script|textarea|title|xmp|plaintext|noscript|iframe|noembed|noframes)\b|<!",
                       re.IGNORECASE)
_ATTR = re.compile(r"""\s([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?""")
_TAG_NAME = re.compile(r"<[A-Za-z0-9]+")
_NO_ALT = "No description has been provided for this image"
_FOCUSABLE = frozenset({"jp-OutputArea-output", "jp-Cell-inputWrapper"})


def _attrs(tag: str) -> dict[str, str] | None:
    """The attributes of a start tag as written, or None if it is not written plainly enough to edit by
    hand (a repeated attribute, or text the attribute pattern does not account for)."""
    inner = tag[_TAG_NAME.match(tag).end():-1]
    if _self_closing(tag):
        inner = inner[:-1]
    found = {}
    pos = 0
    for m in _ATTR.finditer(inner):
        if inner[pos:m.start()].strip() or m.group(1).lower() in found:
            return None
        found[m.group(1).lower()] = next((g for g in m.groups()[1:] if g is not None), "")
        pos = m.end()
    return found if not inner[pos:].strip() else None


def _self_closing(tag: str) -> bool:
    """Whether a start tag ends with the self-closing ``/>``: a "/" right after the name, a space or a quote
    (in ``<img src=x/>`` the "/" belongs to the unquoted value: ``src="x/"``)."""
    inner = tag[_TAG_NAME.match(tag).end():-1]
    return inner == "/" or (inner.endswith("/") and inner[-2] in " \t\n\r\f\"'")


def _add_attr(tag: str, name: str, value: str) -> str:
    end = len(tag) - (2 if _self_closing(tag) else 1)
    return f'{tag[:end]} {name}="{value}"{tag[end:]}'


def _finish_html(body: str) -> tuple[str, int] | None:
    """What nbconvert's HTMLExporter does to the rendered page after its template, without parsing the
    whole page into a BeautifulSoup tree and writing it out again (60 % of a brief's HTML time, growing
    with its tables): images without an alternative text get nbconvert's, and output areas (and input
    wrappers) become focusable (``tabindex="0"``). Returns the page and the number of images given that
    text, or None when the page is not plain enough to edit here: the caller then lets nbconvert do it."""
    if body.count("<body") != 1:
        return None
    start = _BODY_TAG.search(body)
    attrs = _attrs(start.group(0)) if start else None
    if attrs is None or "jp-Notebook" not in attrs.get("class", "").split():
        return None  # the lab template's <body class="jp-Notebook">: every output is inside .jp-Notebook
    head, sep, rest = body.partition("<body")
    if _RAW_TEXT.search(rest) or _ANGLE_IN_TAG.search(rest):
        return None
    ok, added = True, 0

    def img(m: re.Match) -> str:
        nonlocal ok, added
        attrs = _attrs(m.group(0))
        if attrs is None:
            ok = False
            return m.group(0)
        if "alt" in attrs:
            return m.group(0)
        added += 1
        return _add_attr(m.group(0), "alt", _NO_ALT)

    def div(m: re.Match) -> str:
        nonlocal ok
        if not any(c in m.group(0) for c in _FOCUSABLE):
            return m.group(0)
        attrs = _attrs(m.group(0))
        if attrs is None or "tabindex" in attrs:
            ok = False
            return m.group(0)
        return _add_attr(m.group(0), "tabindex", "0") if _FOCUSABLE & set(attrs.get("class", "").split()) \
            else m.group(0)

    rest = _DIV_TAG.sub(div, _IMG_TAG.sub(img, rest))
    return (head + sep + rest, added) if ok else None


def brief_exporter_class():  # noqa: ANN202 - a subclass of nbconvert's HTMLExporter, imported lazily
    """nbconvert's HTMLExporter with two costs of a brief's HTML removed: the same page once parsed (its bytes
    may differ).

    * The notebook is validated once, after the last preprocessor, not after each of the twelve (each
      validation walks every output of the notebook).
    * The rendered page is finished by :func:`_finish_html` instead of a BeautifulSoup round trip of the
      whole page (tests/test_export_html.py: the page read into BeautifulSoup is nbconvert's page)."""
    from nbconvert import HTMLExporter  # here: ~0.3-1 s of imports that `evalkit run` pays in warm_html
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class BriefExporter(HTMLExporter):
        def _validate_preprocessor(self, nbc, preprocessor):  # noqa: ANN001, ANN202
            if preprocessor is self._preprocessors[-1]:
                super()._validate_preprocessor(nbc, preprocessor)

        def from_notebook_node(self, nb, resources=None, **kw):  # noqa: ANN001, ANN003, ANN202
            # HTMLExporter.from_notebook_node (nbconvert 7) up to its BeautifulSoup pass
            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            highlight_code = self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self))
            given = copy.deepcopy(resources)  # for nbconvert's own pass, if it is needed
            resources = self._init_resources(resources)
            filter_data_type = WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self,
                                                     resources=resources)
            self.register_filter("highlight_code", highlight_code)
            self.register_filter("filter_data_type", filter_data_type)
            page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
            finished = _finish_html(page)
            if finished is None:  # a page this module does not edit by hand: nbconvert's own pass
                return super().from_notebook_node(nb, given, **kw)
            if finished[1]:
                self.log.warning("Alternative text is missing on %s image(s).", finished[1])
            return finished[0], resources

    return BriefExporter
