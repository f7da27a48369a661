"""Export an executed notebook to the brief: HTML (nbconvert, packaged template) and PDF.

Route (see docs/architecture.md): nbconvert renders HTML with the packaged ``brief``
template — code cells, prompts, stderr and the exporter marker removed — and headless
Chromium prints it to PDF. CSS paged media puts the evaluation id, page numbers and, for
synthetic data, the synthetic-data notice on every page. Files are written atomically.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import html
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path


def _import_nbformat_without_iri_grammar() -> None:
    """Import nbformat (and so jsonschema) without building jsonschema's optional RFC 3987 IRI parser.

    ``jsonschema._format`` imports ``rfc3987_syntax`` when it is installed (it comes with Jupyter's
    ``jsonschema[format-nongpl]``), and that module compiles an Earley grammar at import: 0.8–2.6 s
    of every ``evalkit run`` process, for the ``iri`` / ``iri-reference`` string formats that neither
    notebooks nor evalkit ever check. The module is hidden while jsonschema loads (jsonschema then
    leaves those two formats unchecked, as without the package) and visible again afterwards."""
    import sys

    if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
        import nbformat  # noqa: F401 - already decided in this process
        return
    sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # import → ImportError
    try:
        import nbformat  # noqa: F401
    finally:
        if sys.modules.get("rfc3987_syntax", 0) is None:
            del sys.modules["rfc3987_syntax"]


_import_nbformat_without_iri_grammar()

import nbformat  # noqa: E402

from evalkit.brief_marker import BRIEF_MIME  # noqa: E402
from evalkit.export_html import brief_exporter_class  # noqa: E402
from evalkit.fileperm import public_mode  # noqa: E402
from evalkit.i18n import t  # noqa: E402


def templates_dir() -> Path:
    """The packaged nbconvert templates (``evalkit/templates``), found through importlib.resources."""
    from importlib.resources import files

    return Path(str(files("evalkit") / "templates"))


class BriefError(RuntimeError):
    """The notebook cannot be exported as a brief (errors in it, no marker, no browser)."""


class _NoAnswer(BriefError):
    """Chromium did not answer in time (hung or overloaded): nothing is retried after it."""


@dataclass(frozen=True)
class BriefFiles:
    html: Path
    pdf: Path | None


def _marker(nb: nbformat.NotebookNode) -> dict:
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if BRIEF_MIME in data:
                return dict(data[BRIEF_MIME])
    raise BriefError("the notebook has no evalkit brief marker: was it executed with evalkit (report.show_header)?")


def clean_for_brief(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Copy of ``nb`` without code, stderr, markers, and with an error check."""
    nb = copy.deepcopy(nb)
    errors = []
    # the brief is the notebook's outputs only: markdown and raw cells are for the researcher
    nb.cells = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(nb.cells):
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
                continue
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                continue
            if BRIEF_MIME in out.get("data", {}):
                continue
            if "application/javascript" in out.get("data", {}):  # a brief runs no script
                out = copy.deepcopy(out)
                del out["data"]["application/javascript"]
                if not out["data"]:
                    continue
            kept.append(out)
        cell["outputs"] = kept
        cell["source"] = ""
    if errors:
        raise BriefError("the executed notebook has errors; no brief is made from it:\n" + "\n".join(errors))
    return nb


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        public_mode(fd)  # mkstemp makes 0600; outputs follow the umask like any other file
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_CSS_PLAIN = re.compile(r"[A-Za-z0-9 _.,:;()\-]")


def css_string(value: object) -> str:
    """``value`` escaped for the inside of a double-quoted CSS string (``content: "…"``): every ASCII
    character except letters, digits, space and ``_.,:;()-`` — and every control or separator
    character — becomes a 6-digit ``\\XXXXXX`` escape, so quotes, backslashes, newlines and ``</style>``
    stay text. Printable non-ASCII (Chinese) is kept as is."""
    out = []
    for ch in str(value):
        if _CSS_PLAIN.fullmatch(ch) or (ord(ch) > 0x7F and ch.isprintable()):
            out.append(ch)
        else:
            out.append(f"\\{ord(ch):06X}")
    return "".join(out)


def render_html(nb: nbformat.NotebookNode) -> str:
    marker = _marker(nb)
    lang = marker.get("lang", "zh")
    clean = clean_for_brief(nb)
    page_before, page_after = ("第 ", " 页") if lang == "zh" else ("Page ", "")
    furniture = {
        "synthetic": bool(marker.get("synthetic")),
        "top_left": t("synthetic_notice", lang) if marker.get("synthetic") else "",
        "top_right": marker.get("title", ""),
        "bottom_left": f"{t('eval_id', lang)}: {marker['evaluation_id']}",
        "page_word_before": page_before,
        "page_word_after": page_after,
        "watermark": "合成数据 SYNTHETIC" if marker.get("synthetic") else "",
    }
    with _EXPORTER_LOCK:  # one exporter, one brief at a time (warm_html runs in a thread)
        body, _ = _brief_exporter().from_notebook_node(
            clean, resources={"evalkit": furniture, "language_code": "zh-CN" if lang == "zh" else "en",
                              "metadata": {"name": marker["evaluation_id"]}}
        )
    return body


_EXPORTER_LOCK = threading.Lock()
_EXPORTERS: list = []


def _brief_exporter():  # noqa: ANN202 - nbconvert's HTMLExporter, imported lazily
    """The process's brief exporter, built at its first use and reused by every later brief.

    Each exporter owns a Jinja environment that compiles the ``brief`` → ``lab`` → ``base`` templates
    on its first render (about 40 % of a warm brief's HTML time); reused, a brief after
    :func:`warm_html` renders with compiled templates. nbconvert's exporters are made to convert many
    notebooks one after another (its command line does): everything per notebook comes in through
    ``from_notebook_node``'s arguments. Call under ``_EXPORTER_LOCK``."""
    if not _EXPORTERS:
        exporter = brief_exporter_class()(template_name="brief", extra_template_basedirs=[str(templates_dir())],
                                           exclude_input=True, exclude_input_prompt=True,
                                           exclude_output_prompt=True)
        # params values (title, evaluation id) reach the page furniture: escaped per context in the template
        exporter.register_filter("css_string", css_string)
        exporter.register_filter("html_text", lambda v: html.escape(str(v), quote=True))
        _EXPORTERS.append(exporter)
    return _EXPORTERS[0]


def _warm_notebook() -> nbformat.NotebookNode:
    """A one-cell notebook with the output kinds of a brief (marker, HTML with an image, Markdown, text).
    Its image has an alternative text, so that the warm-up logs no nbconvert warning of its own."""
    v4 = nbformat.v4
    outputs = [
        v4.new_output("display_data", {BRIEF_MIME: {"evaluation_id": "warm", "lang": "zh", "synthetic": True,
                                                    "title": "warm"}, "text/plain": ""}),
        v4.new_output("display_data", {"text/html": '<div class="ek-block"><h2>热身</h2><table><tr><td>1'
                                                    '</td></tr></table><img alt="" src="x.png"></div>'}),
        v4.new_output("display_data", {"text/markdown": "# 热身\n\n*一段* `文字` [a](#b)"}),
        v4.new_output("stream", name="stdout", text="warm\n"),
    ]
    return v4.new_notebook(cells=[v4.new_code_cell("", outputs=outputs)])


def warm_html() -> None:
    """Render a small brief and discard it: imports nbconvert, builds the process's brief exporter and
    compiles its templates, regular expressions and CSS selectors (about 1 s in a fresh process), so
    that the real brief's HTML, with the same exporter, then takes a tenth of that. :func:`evalkit.runner.run_params` calls it in a thread while the notebook
    runs (the parent only waits for the kernel then). Writes nothing; never raises."""
    with contextlib.suppress(Exception):
        render_html(_warm_notebook())


def find_chromium() -> str:
    for cand in (os.environ.get("EVALKIT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if cand and shutil.which(cand):
            return shutil.which(cand)  # type: ignore[return-value]
    raise BriefError("no Chromium found for PDF export: run `make setup` (installs Debian's chromium) "
                     "or set EVALKIT_CHROMIUM")


def profile_parent() -> str | None:
    """Where a browser's fresh profile folder goes: ``/dev/shm`` (memory) when it is a writable folder, else
    the temporary folder (``None``). Chromium writes ~190 files (2 MB) into a new profile as it starts;
    removing them from a disk-backed /tmp took 0.2–0.6 s at the end of every ``evalkit run`` on a busy host,
    from memory ~0.01 s. The folder is private (0700) either way and removed when the browser closes."""
    shm = "/dev/shm"  # noqa: S108 - a private mkdtemp folder inside it, as in /tmp
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


#: Chromium switches shared by every PDF: no network, no first-run chores, no GPU, a fresh profile
_CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--disable-dev-shm-usage")


class Browser:
    """One headless Chromium that prints any number of HTML files to PDF.

    It is driven through the DevTools protocol over a pair of pipes (``--remote-debugging-pipe``: file
    descriptors 3 and 4 of the browser), so it opens no TCP port, and each PDF costs a page load and a
    print instead of a browser start (~1 s). Each page runs with scripts disabled
    (``Emulation.setScriptExecutionDisabled``), on top of the brief's Content-Security-Policy
    (``default-src 'none'``). The print settings are those of ``--print-to-pdf --no-pdf-header-footer``:
    backgrounds printed, page size from the CSS ``@page`` rule, no header or footer. Chromium exits when
    the pipe closes, i.e. with the process that started it; :meth:`close` also kills it.
    """

    def __init__(self, timeout: float = 120) -> None:
        import fcntl

        self.timeout = timeout
        chromium = find_chromium()
        self._profile = tempfile.mkdtemp(prefix="evalkit-chromium-", dir=profile_parent())
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # copies above 9, so that placing them on 3 and 4 in the child cannot overwrite one another
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)

        def place_pipes() -> None:  # runs in the child between fork and exec
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        cmd = [chromium, *_CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-pipe",
               "about:blank"]
        # a file, not a pipe: a long session's messages would fill a pipe nobody reads and stall Chromium
        self._stderr = Path(self._profile) / "stderr.log"
        try:
            with open(self._stderr, "wb") as err:
                # its own process group: close() ends Chromium and all its helpers with one signal
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                             preexec_fn=place_pipes, close_fds=False, start_new_session=True)
        except BaseException:
            shutil.rmtree(self._profile, ignore_errors=True)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)
        self._w, self._r = to_browser_w, from_browser_r
        self._buf = b""
        self._next_id = 0
        self._events: list[dict] = []
        # the next PDF's page, the last PDF's (kept) or opened ahead by prepare_page() in a thread: (target id,
        # session id)
        self._page: tuple[str, str] | None = None
        self._preparing: threading.Thread | None = None

    # -- DevTools protocol: JSON messages separated by NUL bytes ------------------------------------
    def _read_message(self, deadline: float) -> dict:
        import json
        import select

        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _NoAnswer(f"Chromium did not answer within {self.timeout:.0f} s")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise BriefError(f"Chromium exited (code {self.proc.poll()}): {self._stderr_tail()}")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def _call(self, method: str, params: dict | None = None, session: str | None = None,
              deadline: float | None = None) -> dict:
        """Send one command and wait for its answer (until ``deadline``, ``time.monotonic()`` seconds; by
        default ``timeout`` from now). Not locked: one caller at a time (see :meth:`prepare_page`)."""
        import json

        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._w, data):]
        except OSError as exc:
            raise BriefError(f"Chromium is not running ({exc.strerror}): {self._stderr_tail()}") from None
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BriefError(f"Chromium {method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def _wait_event(self, method: str, session: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, ev in enumerate(self._events):
                if ev.get("method") == method and ev.get("sessionId") == session:
                    del self._events[: i + 1]
                    return
            self._events.append(self._read_message(deadline))

    def _stderr_tail(self) -> str:
        try:
            return self._stderr.read_bytes()[-500:].decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _open_page(self, deadline: float | None = None) -> tuple[str, str]:
        """A new blank page (tab) with scripts off and page events on: ``(target id, session id)``; every
        answer waited for until ``deadline`` (``time.monotonic()`` seconds) if given. The tab
        opens in the background: the headless window does not switch to it (tab strip, toolbar and focus
        updates) and the page is not painted for a screen nobody sees — the PDF is the same (all 13 shipped
        briefs: pdftoppm pages identical), with about 0.05 s less of the browser's time after the notebook."""
        target = self._call("Target.createTarget", {"url": "about:blank", "background": True},
                            deadline=deadline)["targetId"]
        try:
            session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 deadline=deadline)["sessionId"]
            self._call("Emulation.setScriptExecutionDisabled", {"value": True}, session, deadline)
            self._call("Page.enable", {}, session, deadline)
        except BaseException as exc:
            if self.alive() and not isinstance(exc, _NoAnswer):
                with contextlib.suppress(BriefError):
                    self._call("Target.closeTarget", {"targetId": target})
            raise
        return target, session

    def prepare_page(self) -> None:
        """Open the next PDF's page now, in a thread, so that :meth:`print_pdf` finds it ready.

        A new page costs the browser a tab (its headless window's tab strip, toolbar and layout) and a
        renderer, 0.1–0.2 s; :func:`prestart_browser` asks for it while the notebook runs. The page is blank,
        with scripts off, exactly as :meth:`print_pdf` would open it. Nothing happens if a page is ready (the
        last PDF's, kept) or being opened; a failure leaves no page (print_pdf then opens its own).

        The thread talks to Chromium through :meth:`_call`, which is not locked: until it ends, nothing else
        may call the browser. :meth:`print_pdf` joins it first (:meth:`_take_page`); any other use of the
        browser must join ``_preparing`` first, and a thread that calls this (through
        :func:`prestart_browser`) must be joined before the export, as :func:`evalkit.runner.run_params`
        joins its ``evalkit-warm-brief`` thread (and the portfolio its ``evalkit-portfolio-browser``)."""
        if self._page is not None or (self._preparing is not None and self._preparing.is_alive()):
            return

        def run() -> None:
            with contextlib.suppress(Exception):
                self._page = self._open_page()

        self._preparing = threading.Thread(target=run, name="evalkit-chromium-page", daemon=True)
        self._preparing.start()

    def _take_page(self) -> tuple[tuple[str, str], bool]:
        """The prepared page if there is one (waiting for it if it is being opened), else a new one; and
        whether it was prepared. Waits at most ``timeout`` in all: on a hung Chromium the page being
        opened, then a new one, would each wait that long."""
        deadline = time.monotonic() + self.timeout
        if self._preparing is not None:
            self._preparing.join(self.timeout)
            if self._preparing.is_alive():  # still waiting for Chromium (and still using the pipe)
                raise _NoAnswer(f"Chromium did not answer within {self.timeout:.0f} s")
            self._preparing = None
        page, self._page = self._page, None
        if page is not None:
            return page, True
        return self._open_page(deadline), False

    def print_pdf(self, html_path: Path, pdf_path: Path) -> Path:
        """Load ``html_path`` (absolute ``file://`` URL) in the browser's page — the one the last PDF was
        printed in, else the one :meth:`prepare_page` opened, else a new one — and write its PDF atomically.
        If that page fails (it may have died since it was opened) while the browser still answers, the PDF
        is printed once more in a page opened now. The page stays open for the next PDF."""
        import base64

        page, prepared = self._take_page()
        try:
            res = self._print_in(page, html_path)
        except _NoAnswer:
            raise
        except BriefError:
            if not prepared or not self.alive():
                raise
            # a page opened (or kept) minutes ago may have died since (its target closed, its background
            # renderer ended): once more, in a page opened now
            page = self._open_page()
            res = self._print_in(page, html_path)
        self._page = page  # kept: the next PDF loads in it (see _print_in)
        data = base64.b64decode(res["data"])
        if not data:
            raise BriefError(f"Chromium printed an empty PDF for {html_path}")
        _atomic_write(Path(pdf_path).resolve(), data)
        return Path(pdf_path).resolve()

    def _print_in(self, page: tuple[str, str], html_path: Path) -> dict:
        """Load ``html_path`` in ``page`` and print it (Chromium's ``Page.printToPDF`` answer). After a failure
        the page is closed (unless Chromium stopped answering); after a PDF it stays open, and the next PDF
        navigates it to its own file: a new tab per PDF (``Target.createTarget``, its renderer and the tab's
        set-up) cost the browser 0.1–0.2 s of CPU per brief, 0.5 → 0.35–0.4 s in all (medium-world batch
        briefs); the PDFs are the same (pdftotext and pdftoppm pages identical). The brief's page holds no
        state a next one could see: scripts are off, its images are ``data:`` URLs, its one font is local."""
        target, session = page
        self._events.clear()  # after the page is open: its events (none are awaited) are not kept
        try:
            nav = self._call("Page.navigate", {"url": Path(html_path).resolve().as_uri()}, session)
            if nav.get("errorText"):
                raise BriefError(f"Chromium could not open {html_path}: {nav['errorText']}")
            self._wait_event("Page.loadEventFired", session)
            res = self._call("Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True,
                                                 "displayHeaderFooter": False}, session)
        except BaseException as exc:
            if self.alive() and not isinstance(exc, _NoAnswer):  # the failure is the error, not the close
                with contextlib.suppress(BriefError):
                    self._call("Target.closeTarget", {"targetId": target})
            raise
        return res

    def close(self) -> None:
        """Stop the browser and its helper processes at once (SIGKILL to its process group) and remove its
        profile. Every PDF is written by then, from the data Chromium sent; nothing else of the browser is
        kept, so its orderly shutdown (closing pages and helpers, writing the profile: 0.3–0.6 s at the end
        of every ``evalkit run``) is skipped."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:  # not a group leader after all (or gone): the browser process alone
                with contextlib.suppress(OSError):
                    self.proc.kill()
        if self._preparing is not None:  # its read ends at once: the browser is gone, its pipe closed
            self._preparing.join(timeout=10)
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # cannot happen after SIGKILL unless the kernel is stuck
            pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_session: contextvars.ContextVar[list | None] = contextvars.ContextVar("evalkit_browser", default=None)


@contextlib.contextmanager
def browser_session() -> Iterator[None]:
    """Inside this context every PDF export reuses one Chromium, started at the first PDF and
    stopped at the end (``evalkit run`` of several files, a batch worker's evaluations)."""
    holder: list = []
    token = _session.set(holder)
    try:
        yield
    finally:
        _session.reset(token)
        for b in holder:
            b.close()


def process_browser() -> None:
    """From now on, every PDF export of this thread reuses one Chromium (started at the first PDF),
    closed at exit: a batch worker process calls this once (:func:`evalkit.batch.local._worker_init`)."""
    import atexit

    holder: list = []
    _session.set(holder)
    _process_browsers.append(holder)
    atexit.register(close_process_browser)


#: the browsers of :func:`process_browser` (closed at exit, or by a worker that leaves with ``os._exit``)
_process_browsers: list[list] = []


def close_process_browser() -> None:
    """Close the Chromium of :func:`process_browser`, if one runs, and remove its profile folder (in
    ``/dev/shm`` where writable: a worker that left without this would leave it in memory)."""
    while _process_browsers:
        for b in _process_browsers.pop():
            b.close()


def in_browser_session() -> bool:
    """Whether PDF exports of this context reuse a browser (:func:`browser_session`, :func:`process_browser`)."""
    return _session.get() is not None


def prestart_browser() -> None:
    """Start the current session's Chromium now, if none is running, and open the page of the next PDF
    (:meth:`Browser.prepare_page`), so that the browser's start (about 0.5–1 s) and the new page (0.1–0.2 s)
    overlap the notebook's execution instead of preceding the PDF (:func:`evalkit.runner.run_params`).
    Outside a session, or without a Chromium installed, nothing happens: :func:`html_to_pdf` then
    starts one, or reports the missing browser, exactly as before."""
    holder = _session.get()
    if holder is None:
        return
    if holder and not holder[0].alive():
        holder.pop().close()
    if not holder:
        with contextlib.suppress(BriefError):
            holder.append(Browser())
    if holder:  # the brief's page too (once the browser answers: in a thread)
        holder[0].prepare_page()


def session_browser() -> Browser | None:
    """The running browser of the current :func:`browser_session` (``None`` outside or before the first PDF)."""
    holder = _session.get()
    return holder[0] if holder else None


def html_to_pdf(html_path: Path, pdf_path: Path, timeout: int = 120) -> Path:
    """Print an HTML file to PDF with headless Chromium (no network, fresh profile, scripts off).

    Inside :func:`browser_session` the session's browser is reused (restarted once if it died);
    otherwise a browser is started for this one PDF. Scripts are off twice: the brief template carries a
    Content-Security-Policy (``default-src 'none'``) that blocks every script, in this route and in any
    browser opening ``brief.html``, and the page runs with script execution disabled."""
    holder = _session.get()
    if holder is None:
        with Browser(timeout) as browser:
            return browser.print_pdf(html_path, pdf_path)
    if holder and not holder[0].alive():
        holder.pop().close()
    if not holder:
        holder.append(Browser(timeout))
    return holder[0].print_pdf(html_path, pdf_path)


def export_brief(executed: str | Path, out_dir: str | Path | None = None, *, pdf: bool = True,
                 on_step: Callable[[str], None] | None = None) -> BriefFiles:
    """Re-export ``executed.ipynb`` to ``brief.html`` and ``brief.pdf`` (beside it by default);
    ``on_step`` hears ``brief_html`` and ``brief_pdf`` as they start (:mod:`evalkit.progress`)."""
    step = on_step or (lambda _s: None)
    executed = Path(executed)
    if not executed.is_file():
        raise BriefError(f"executed notebook not found: {executed}")
    out = Path(out_dir) if out_dir else executed.parent
    step("brief_html")
    nb = nbformat.read(executed, as_version=4)
    html_text = render_html(nb)
    html_path = out / "brief.html"
    _atomic_write(html_path, html_text.encode("utf-8"))
    if pdf:
        step("brief_pdf")
    pdf_path = html_to_pdf(html_path, out / "brief.pdf") if pdf else None
    return BriefFiles(html_path, pdf_path)
