"""Notebook kernels run over Unix-domain sockets in a private directory (evalkit.runner)."""

from __future__ import annotations

import os
import stat
import tempfile

import nbformat
import papermill as pm
import pytest

from evalkit.runner import _kernel_config


@pytest.mark.skipif(os.name != "posix", reason="IPC transport is POSIX only")
def test_kernel_uses_ipc_sockets_in_a_private_directory(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from ipykernel.kernelapp import IPKernelApp\n"
        "app = IPKernelApp.instance()\n"
        "print(app.transport, app.ip)")]
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    with tempfile.TemporaryDirectory(prefix="evalkit-kernel-") as sockets:
        assert stat.S_IMODE(os.stat(sockets).st_mode) == 0o700  # only this user can reach the sockets
        pm.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False,
                            config=_kernel_config(sockets))
    text = nbformat.read(out, as_version=4).cells[0].outputs[0]["text"]
    transport, ip = text.split()
    assert transport == "ipc" and ip.startswith(sockets)
