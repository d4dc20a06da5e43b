"""Every Python block of the README and of ``docs/*.md`` runs as written (offline: MNIST-1D is generated
locally, the other blocks build their own data), in a fresh namespace and an empty working directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: (page name, index on the page, code)
BLOCKS = [
    (page.relative_to(ROOT).as_posix(), i, code)
    for page in PAGES
    for i, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.S))
]


def test_the_readme_and_docs_have_python_blocks():
    assert sum(page == "README.md" for page, _, _ in BLOCKS) >= 2
    assert len(BLOCKS) >= 5


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=lambda i: f"{BLOCKS[i][0]}-block{BLOCKS[i][1]}")
def test_readme_block_runs_as_written(index, tmp_path, monkeypatch):
    pytest.importorskip("snntorch")
    pytest.importorskip("norse")
    pytest.importorskip("mnist1d")
    monkeypatch.chdir(tmp_path)
    page, number, source = BLOCKS[index]
    code = compile(source, f"{page} python block {number}", "exec")
    exec(code, {"__name__": f"readme_block_{index}"})
