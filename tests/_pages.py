"""A small page for the Chromium tests (a script that must not run, CJK text) and the text of a PDF."""

import subprocess

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<style>@page {{ size: A4; margin: 15mm; }}</style></head>
<body><p id="a">{text} 两队一室</p>
<script>document.getElementById('a').textContent = 'SCRIPT RAN';</script></body></html>"""


def pdf_text(path) -> str:
    """The PDF's text (pdftotext)."""
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
