"""Architecture: the core (``snn_motifs`` outside the adapters package) never imports a simulator.

Everything that knows snnTorch or Norse (backends, SpiKL-IP on stock neurons, NIR importers, Norse method
registration) lives in ``adapters/`` (installed as ``snn_motifs.adapters``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import snn_motifs

CORE = Path(snn_motifs.__file__).parent
SIMULATORS = ("snntorch", "norse")


def _is_simulator(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in SIMULATORS


def _simulator_imports(path: Path) -> list[str]:
    """``import snntorch`` / ``from norse... import`` statements, and ``require("snntorch", ...)`` /
    ``importlib.import_module("norse...")`` calls with a literal name, anywhere in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if _is_simulator(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_simulator(node.module):
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0].value
            if (
                name in ("require", "import_module", "__import__")
                and isinstance(arg, str)
                and _is_simulator(arg)
            ):
                found.append(f"{name}({arg!r})")
    return [f"{path.relative_to(CORE.parent)}:{line}" for line in found]


def test_no_core_file_imports_a_simulator():
    files = sorted(CORE.rglob("*.py"))
    assert CORE / "tssl.py" in files and not any("adapters" in f.parts for f in files)
    offenders = [hit for f in files for hit in _simulator_imports(f)]
    assert not offenders, f"simulator imports outside adapters/: {offenders}"
    text = "\n".join(f.read_text() for f in files)
    for stmt in ("import snntorch", "from snntorch", "import norse", "from norse"):
        assert stmt not in text, stmt


@pytest.mark.slow
def test_core_runs_with_simulators_unimportable():
    code = """
import importlib, pkgutil, sys
sys.modules['snntorch'] = None  # any import of them now raises ImportError
sys.modules['norse'] = None
import torch
import snn_motifs
names = sorted(m.name for m in pkgutil.walk_packages(snn_motifs.__path__, 'snn_motifs.'))
assert 'snn_motifs.tssl' in names and 'snn_motifs.fused_kernel' in names, names
for name in names:
    importlib.import_module(name)
torch.manual_seed(0)
layer = snn_motifs.SCML(6, 16, 4, backend='native', spike_fn='tssl')
snn_motifs.SpiKLIP(window_only=True).attach(layer)
spikes, state = layer.run((torch.rand(20, 3, 6) < 0.5).float() * 2)
spikes.sum().backward()
assert layer.fc.weight.grad is not None and bool(torch.isfinite(layer.fc.weight.grad).all())
loaded = [m for m, mod in sys.modules.items() if mod is not None and m.split('.')[0] in ('snntorch', 'norse')]
assert not loaded, loaded
print('ok', len(names))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stdout + out.stderr
