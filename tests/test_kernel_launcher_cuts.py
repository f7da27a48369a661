"""What an early kernel leaves out of its start (issue 15): numpy's unused submodules while SciPy copies
numpy's namespace, and the Jupyter debugger; both importable again afterwards."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_scipy_special_imports_without_numpy_f2py_and_testing():
    got = _python("""
        import sys
        import numpy as np
        from evalkit.kernel_launcher import numpy_namespace_without_unused
        names, listing = list(np.__all__), dir(np)
        with numpy_namespace_without_unused():
            assert "f2py" not in np.__all__ and "f2py" not in dir(np)
            from scipy import special
            assert float(special.stdtrit(10, 0.975)) > 2.2
        print(sorted(m for m in ("numpy.f2py", "numpy.testing") if m in sys.modules))
        assert np.__all__ == names and dir(np) == listing  # restored
        import numpy.testing, numpy.f2py  # still importable
        print(np.testing.__name__)
    """)
    assert got.splitlines() == ["[]", "numpy.testing"]


def test_numpy_namespace_left_alone_when_the_submodules_are_loaded():
    got = _python("""
        import numpy as np, numpy.testing, numpy.f2py
        from evalkit.kernel_launcher import numpy_namespace_without_unused
        with numpy_namespace_without_unused():
            print("f2py" in np.__all__, "testing" in dir(np))
    """)
    assert got == "True True"


def test_debugpy_not_importable_inside_and_importable_after():
    pytest.importorskip("debugpy")
    got = _python("""
        import sys
        from evalkit.kernel_launcher import without_debugpy
        with without_debugpy():
            try:
                import debugpy
                print("imported")
            except ImportError:
                print("blocked")
            from ipykernel import debugger
            print(debugger._is_debugpy_available)
        import debugpy
        print("debugpy" in sys.modules)
    """)
    assert got.splitlines() == ["blocked", "False", "True"]
