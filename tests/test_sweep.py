"""``neuro-erc sweep``: Ray tasks give the cells' in-process results; resumability; the mean ± std table.

Ray's worker processes do not see a test's monkeypatches, so the data cannot be shrunk the way
tests/test_bench.py does it; the synthetic dataset's size cannot be set through the config
either. The sweeps here use the embedded ``--dataset synthetic`` at its default size (240
train dialogues), generated in every worker from the config alone, with a tiny model: about
a second per epoch.
"""
import contextlib
import csv
import io
import json
import math
import shutil

import pytest

import neuro_erc.sweep as sweep
from neuro_erc.cli import main
from neuro_erc.config import from_dict, merge
from neuro_erc.errors import ConfigError
from neuro_erc.run_config import TrainConfig
from neuro_erc.train import train

TINY = {"epochs": 2, "lr": 0.003, "batch_size": 8,
        "model": {"modalities": ["t", "a"], "dim": 16, "classifier_hidden": 16, "fusion_layers": 1, "context": "none",
                  "core": {"dim": 16, "depth": 1, "mlp_ratio": 1}}}
CELLS = [f"spikemo/T{T}/seed{s}" for T in (2, 4) for s in (0, 1)]
RUN_FILES = ("config.json", "metrics.jsonl", "best.pt", "last.pt", "report_dev.json", sweep.DONE)


def sweep_args(config, out, *extra, T="2,4", seeds="0,1"):
    return ["sweep", "--dataset", "synthetic", "--config", str(config), "--T", T, "--seeds", seeds,
            "--out", str(out), "--quiet", *extra]


def cell_f1(out, cells=CELLS):
    return {cell: json.loads((out / cell / sweep.DONE).read_text())["row"]["weighted_f1"] for cell in cells}


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


@pytest.fixture(scope="module")
def here_sweep(tiny_config, tmp_path_factory):
    """The 2 T × 2 seeds sweep run as if Ray were not installed: (its directory, its stderr)."""
    out = tmp_path_factory.mktemp("here") / "sweep"
    stderr = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(stderr):
        patch.setattr(sweep, "ray_available", lambda: False)
        assert main(sweep_args(tiny_config, out)) == 0
    return out, stderr.getvalue()


def test_without_ray_the_cells_run_here_as_ordinary_runs(here_sweep):
    out, stderr = here_sweep
    assert "Ray is not installed" in stderr and "one after another" in stderr
    for cell in CELLS:
        assert all((out / cell / name).is_file() for name in RUN_FILES), cell
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["variant"], r["T"], r["n_seeds"], r["seeds"]) for r in rows] == [("spikemo", "2", "2", "0,1"),
                                                                                ("spikemo", "4", "2", "0,1")]
    f1 = cell_f1(out)
    for row in rows:
        mine = [f1[f"spikemo/T{row['T']}/seed{s}"] for s in (0, 1)]
        assert float(row["weighted_f1"]) == pytest.approx(sum(mine) / 2, rel=1e-5)
        assert float(row["weighted_f1_std"]) == pytest.approx(abs(mine[0] - mine[1]) / math.sqrt(2), rel=1e-5, abs=1e-9)
    assert (out / "wf1_vs_T.png").stat().st_size > 5000


def test_a_two_worker_ray_sweep_gives_the_cells_results_run_here(here_sweep, tiny_config, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'neuro-erc[distributed]')")
    out = tmp_path / "ray"
    assert main(sweep_args(tiny_config, out, "--workers", "2")) == 0
    here = cell_f1(here_sweep[0])
    assert cell_f1(out) == here
    assert len(set(here.values())) > 1  # the cells learnt different things: the comparison has teeth


def test_finished_cells_are_not_trained_again(here_sweep, tiny_config, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    shutil.copytree(here_sweep[0], out)
    before = (out / "results.csv").read_text()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(sweep, "train", no_training)
    monkeypatch.setattr(sweep, "ray_available", lambda: False)
    assert main(sweep_args(tiny_config, out)) == 0
    assert (out / "results.csv").read_text() == before


def test_a_killed_cell_resumes_from_its_last_checkpoint(here_sweep, tiny_config, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    cell = "spikemo/T2/seed0"
    config = json.loads((here_sweep[0] / cell / sweep.DONE).read_text())["config"]
    # killed after its first epoch: last.pt holds epoch 0 (a run asked for 1 epoch leaves just that)
    train(from_dict(TrainConfig, merge(config, {"epochs": 1})), out / cell, show_progress=False)
    first_epoch = (out / cell / "metrics.jsonl").read_text()
    monkeypatch.setattr(sweep, "ray_available", lambda: False)
    assert main(sweep_args(tiny_config, out, T="2", seeds="0")) == 0
    epochs = (out / cell / "metrics.jsonl").read_text()
    assert epochs.startswith(first_epoch) and len(epochs.splitlines()) == 2  # epoch 0 kept, epoch 1 trained
    assert cell_f1(out, [cell]) == cell_f1(here_sweep[0], [cell])  # as if it had never stopped


def test_summarise_takes_mean_and_sample_std_over_seeds(tmp_path):
    rows = [
        {"variant": "spikemo", "T": 2, "seed": 0, "weighted_f1": 50.0, "energy_uj_45nm": 1.0, "per_class_f1": {"joy": 3.0}},
        {"variant": "spikemo", "T": 2, "seed": 1, "weighted_f1": 52.0, "energy_uj_45nm": 3.0},
        {"variant": "spikemo", "T": 2, "seed": 2, "weighted_f1": 57.0, "best_epoch": 4},  # not measured
        {"variant": "no_dswa", "T": 2, "seed": 0, "weighted_f1": 40.0, "converged": True},
    ]
    spikemo, no_dswa = sweep.summarise(rows, by=("variant", "T"))
    assert spikemo == {"variant": "spikemo", "T": 2, "n_seeds": 3, "seeds": "0,1,2",
                       "weighted_f1": 53.0, "weighted_f1_std": pytest.approx(math.sqrt(13)),  # (9 + 1 + 16) / (3 − 1)
                       "energy_uj_45nm": 2.0, "energy_uj_45nm_std": pytest.approx(math.sqrt(2)),  # over the 2 measured
                       "best_epoch": 4, "best_epoch_std": 0.0}
    assert no_dswa == {"variant": "no_dswa", "T": 2, "n_seeds": 1, "seeds": "0", "weighted_f1": 40.0,
                       "weighted_f1_std": 0.0}  # booleans and dicts are not averaged

    sweep.write_sweep(tmp_path, rows)
    with open(tmp_path / "results.csv") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0])[:6] == ["variant", "T", "n_seeds", "seeds", "weighted_f1", "weighted_f1_std"]
    assert table[0]["weighted_f1_std"] == f"{math.sqrt(13):.6g}" and table[1]["energy_uj_45nm"] == ""
    assert json.loads((tmp_path / "results.json").read_text())[1]["energy_uj_45nm"] is None
    for name in ("wf1_vs_T.png", "energy_vs_T.png"):
        assert (tmp_path / name).stat().st_size > 5000


def test_grid_overlays_variants_and_sets_arch_only_when_given():
    base = merge(TINY, {"dataset": "synthetic"})
    cells = sweep.grid(base, ["spikemo", "no_dswa"], Ts=[2, 4], seeds=[0, 1])
    assert [c.path for c in cells[:4]] == CELLS and cells[4].path == "no_dswa/T2/seed0"
    assert cells[5].labels == {"variant": "no_dswa", "T": 2, "seed": 1}
    assert cells[5].config["model"]["dswa"] is False and cells[5].config["seed"] == 1
    assert cells[5].config["model"]["core"]["T"] == 2 and cells[0].config["model"]["dswa"] is True
    assert "arch" not in cells[0].labels and cells[0].config["arch"] == "spikemo"  # the config's, untouched

    (default,) = sweep.grid(base, ["spikemo"])  # no T or seed list: the config's
    assert default.path == "spikemo/T32/seed0"

    (cell,) = sweep.grid(base, ["spikemo"], Ts=[4], seeds=[0], archs=["stream"])
    assert cell.config["arch"] == "stream" and cell.labels["arch"] == "stream" and cell.path == "stream/spikemo/T4/seed0"
    with pytest.raises(ConfigError, match="unknown variant"):
        sweep.grid(base, ["no_such"])


@pytest.mark.parametrize("text", ["", "0,x", "1,1", "-1"])
def test_bad_seed_lists_are_refused(text):
    with pytest.raises(ConfigError, match="--seeds"):
        sweep.parse_ints(text, "--seeds", minimum=0)
