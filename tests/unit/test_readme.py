"""Every Python snippet in README.md runs as written.

A snippet marked ``<!-- file: PATH -->`` must be that file word for word (the file
is run against the broker by tests/integration/test_examples.py); every other
Python snippet is run here as a script of its own and must exit 0.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"(?:<!-- file: (?P<file>\S+) -->\n)?```python\n(?P<code>.*?)```", re.S)
BLOCKS = [(m.group("file"), m.group("code")) for m in BLOCK.finditer(README)]
INCLUDED = [(f, code) for f, code in BLOCKS if f is not None]
STANDALONE = [code for f, code in BLOCKS if f is None]


def test_the_readme_has_snippets_of_both_kinds() -> None:
    """The checks below are not vacuous."""
    assert (True, True) == (len(INCLUDED) >= 3, len(STANDALONE) >= 2)


@pytest.mark.parametrize(("path", "code"), INCLUDED, ids=[f for f, _ in INCLUDED])
def test_an_included_snippet_is_its_file_word_for_word(path: str, code: str) -> None:
    assert (ROOT / path).read_text(encoding="utf-8") == code


@pytest.mark.parametrize("code", STANDALONE, ids=[f"snippet-{i}" for i in range(len(STANDALONE))])
def test_a_standalone_snippet_runs_as_a_script(code: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert 0 == done.returncode, done.stderr[-2000:]
