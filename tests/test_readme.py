"""Every Python block of the README runs as written (offline: MNIST-1D is generated locally, the other
blocks build their own data), in a fresh namespace and an empty working directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 4


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=lambda i: f"block{i}")
def test_readme_block_runs_as_written(index, tmp_path, monkeypatch):
    pytest.importorskip("snntorch")
    pytest.importorskip("norse")
    pytest.importorskip("mnist1d")
    monkeypatch.chdir(tmp_path)
    code = compile(BLOCKS[index], f"README.md python block {index}", "exec")
    exec(code, {"__name__": f"readme_block_{index}"})
