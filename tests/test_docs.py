"""The README's example runs and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from conftest import requires_sud

ROOT = Path(__file__).resolve().parent.parent


@requires_sud
def test_readme_example():
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 17
    expected = [line.split("#", 1)[1].strip() for line in code.splitlines() if line.startswith("print(")]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue().splitlines() == expected


def test_ci_runs_the_readme_test_command():
    text = (ROOT / "README.md").read_text()
    assert "bash tools/run_tests.sh" in text
    assert "tools/run_tests.sh" in (ROOT / ".ci" / "run").read_text()
