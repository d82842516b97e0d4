"""The README's main job, at test size: every step runs and every artefact it names exists."""
import json
from pathlib import Path

from neuro_erc.cli import main
from neuro_erc.export.lava_run import lava_available


def test_demo_quick_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--quick"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert 0 <= summary["report_dev"] <= 100
    paths = [summary["artefacts"]["report_dev"], *summary["artefacts"]["nir"], *summary["artefacts"]["rasters"],
             *summary["artefacts"]["bench"]]
    assert all(Path(p).exists() for p in paths)
    assert any(p.endswith("results.csv") for p in summary["artefacts"]["bench"])
    if lava_available():
        assert summary["parity_float"]["spike_agreement"] == summary["parity_float"]["spike_jaccard"] == 1.0
        assert summary["parity_float"]["prediction_agreement"] == 1.0
    assert "demo finished" in capsys.readouterr().out
