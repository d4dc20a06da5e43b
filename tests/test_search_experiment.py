"""``search.run`` (``search/experiment.py``), the experiment around the runs: a resume with another config
or other data is refused before anything is written, and a truncated artefact names its way out."""

from __future__ import annotations

import json

import pytest

from snn_motifs.search import HRMASConfig

from .conftest import tiny_search


def test_resume_refuses_changed_config_or_data_without_touching_disk(tmp_path):
    from snn_motifs import search

    cfg, data = tiny_search()
    out = tmp_path / "exp"
    quiet = dict(data=data, baseline=False, plots=False, progress=False, log=lambda s: None)
    first = search.run(cfg, out, **quiet)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    changed = HRMASConfig(**{**cfg.__dict__, "hidden": 16, "lr": 0.02})
    with pytest.raises(ValueError, match=r"different config \(differs in \['hidden', 'lr'\]\)"):
        search.run(changed, out, resume=True, **quiet)
    other_data = data._replace(x_train=data.x_train[:100], y_train=data.y_train[:100])
    with pytest.raises(ValueError, match="different data"):
        search.run(cfg, out, resume=True, **{**quiet, "data": other_data})
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing written
    # a truncated artefact is named with the way out; deleting it rebuilds it from the checkpoint
    result = out / "seed0" / "result.json"
    result.write_text(result.read_text()[:20])
    (out / "seed0" / ".history.json.1234.tmp").write_text("{")  # a writer killed mid-write
    with pytest.raises(ValueError, match=r"result .*result\.json is corrupt.*delete it"):
        search.run(cfg, out, resume=True, **quiet)
    result.unlink()
    again = search.run(cfg, out, resume=True, **quiet)
    assert again["runs"] == first["runs"] and json.loads(result.read_text()) == first["runs"][0]
    assert not list(out.rglob(".*.tmp"))
