"""One Chromium reused for several PDFs (evalkit.export.Browser over the DevTools pipe)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

from _pages import PAGE
from _pages import pdf_text as _pdf_text
from evalkit import export

pytestmark = pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("pdftotext")),
                                reason="needs chromium and pdftotext")

def _chromium_children() -> list[psutil.Process]:
    """Browser processes started by this process (Chromium's own helpers are its children, not ours)."""
    return [p for p in psutil.Process().children() if "chrom" in p.name().lower()]


def test_one_browser_prints_two_briefs_with_scripts_off(tmp_path):
    # no Content-Security-Policy in these pages: scripts are off through the page settings alone
    for name in ("one", "two"):
        (tmp_path / f"{name}.html").write_text(PAGE.format(text=f"PAGE {name.upper()}"), encoding="utf-8")
    with export.browser_session():
        assert export.session_browser() is None  # started only when a PDF is asked for
        export.html_to_pdf(tmp_path / "one.html", tmp_path / "one.pdf")
        first = export.session_browser()
        export.html_to_pdf(tmp_path / "two.html", tmp_path / "two.pdf")
        assert export.session_browser() is first and first.alive()
        assert [p.pid for p in _chromium_children()] == [first.proc.pid]
    assert not first.alive()  # stopped at the end of the session
    for name in ("one", "two"):
        text = _pdf_text(tmp_path / f"{name}.pdf")
        assert f"PAGE {name.upper()}" in text and "两队一室" in text and "SCRIPT RAN" not in text
        assert oct((tmp_path / f"{name}.pdf").stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert _chromium_children() == []


def test_a_browser_that_died_is_restarted_once(tmp_path):
    (tmp_path / "p.html").write_text(PAGE.format(text="AGAIN"), encoding="utf-8")
    with export.browser_session():
        export.html_to_pdf(tmp_path / "p.html", tmp_path / "a.pdf")
        dead = export.session_browser()
        dead.proc.kill()
        dead.proc.wait()
        export.html_to_pdf(tmp_path / "p.html", tmp_path / "b.pdf")
        assert export.session_browser() is not dead
    assert "AGAIN" in _pdf_text(tmp_path / "b.pdf")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process checks are Linux-specific")
def test_close_ends_the_browser_and_all_its_helpers_at_once(tmp_path):
    """Chromium runs in its own process group, and close() kills that group: no helper (zygote, renderer,
    utility processes) outlives it, and the profile folder is gone when close() returns."""
    (tmp_path / "p.html").write_text(PAGE.format(text="X"), encoding="utf-8")
    browser = export.Browser()
    browser.print_pdf(tmp_path / "p.html", tmp_path / "p.pdf")
    helpers = psutil.Process(browser.proc.pid).children(recursive=True)
    assert helpers and os.getpgid(browser.proc.pid) == browser.proc.pid != os.getpgid(0)
    browser.close()
    assert not browser.alive() and not os.path.exists(browser._profile)
    assert os.path.dirname(browser._profile) == (export.profile_parent() or tempfile.gettempdir())
    deadline = time.monotonic() + 5  # SIGKILLed: only the kernel's teardown of each process is left
    while any(_running(p) for p in helpers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p.pid for p in helpers if _running(p)] == []


def _running(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_browser_opens_no_tcp_listener(tmp_path):
    (tmp_path / "p.html").write_text(PAGE.format(text="X"), encoding="utf-8")
    with export.Browser() as browser:
        browser.print_pdf(tmp_path / "p.html", tmp_path / "p.pdf")
        procs = [psutil.Process(browser.proc.pid), *psutil.Process(browser.proc.pid).children(recursive=True)]
        listening = [c for p in procs for c in _connections(p) if c.status == psutil.CONN_LISTEN]
        assert listening == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process checks are Linux-specific")
def test_browser_dies_with_the_process_that_started_it(tmp_path):
    """SIGKILL of its owner (no chance to clean up) closes the DevTools pipe, and Chromium exits."""
    code = ("import sys, time; from evalkit.export import Browser; b = Browser(); b._call('Browser.getVersion'); "
            "print(b.proc.pid, b._profile, flush=True); time.sleep(60)")
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             env={**os.environ})
    pid_text, profile = owner.stdout.readline().split()
    pid = int(pid_text)
    assert psutil.pid_exists(pid)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    else:
        psutil.Process(pid).kill()
        pytest.fail("Chromium outlived the process that started it")
    shutil.rmtree(profile, ignore_errors=True)  # the SIGKILLed owner could not remove it


def _connections(p: psutil.Process):
    try:
        return p.net_connections(kind="inet")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_profile_parent_is_memory_when_writable_else_the_temporary_folder(monkeypatch):
    writable = os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK)
    assert export.profile_parent() == ("/dev/shm" if writable else None)
    monkeypatch.setattr(export.os, "access", lambda *_a: False)
    assert export.profile_parent() is None


def test_close_process_browser_removes_the_workers_profile():
    """A batch worker that leaves with os._exit (its atexit handlers never run) closes its Chromium through
    close_process_browser: the process ends and its profile folder (in /dev/shm where writable) is gone."""
    import contextvars

    def worker() -> tuple:
        export.process_browser()
        export.prestart_browser()
        b = export._session.get()[0]
        profile, proc = b._profile, b.proc
        assert os.path.isdir(profile) and proc.poll() is None
        export.close_process_browser()
        return profile, proc

    profile, proc = contextvars.copy_context().run(worker)  # the session stays in that context
    assert not os.path.exists(profile)
    assert proc.poll() is not None
    assert not export._process_browsers
