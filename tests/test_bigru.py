"""``--arch bigru``, the plain baseline: trains and evaluates through the command line, its
checkpoint round-trips, the spiking-only commands refuse it, and the sweep and
benchmarks/erc_results.py run it as the ``bigru`` variant."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

import neuro_erc.run_config as run_config
import neuro_erc.sweep as sweep
from neuro_erc.checkpoint import Checkpoint
from neuro_erc.cli import main
from neuro_erc.config import from_dict
from neuro_erc.data.batching import collate
from neuro_erc.data.synthetic import make_synthetic
from neuro_erc.errors import ConfigError
from neuro_erc.model.bigru import BiGRUClassifier
from neuro_erc.run_config import TrainConfig

MODALITIES = ["t", "a"]
TINY = {"epochs": 1, "batch_size": 4, "lr": 0.003, "threads": 1, "loss": {"ce": 1.0, "hgr": 0.1},
        "model": {"modalities": MODALITIES, "dim": 16, "context": "bigru", "core": {"dim": 16, "depth": 1}}}
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "erc_results.py"


def tiny_data():
    return make_synthetic(seed=4, n_train=10, n_dev=4, n_test=2, dims={"t": 12, "a": 8, "v": 8}, max_len=6)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bigru_config") / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


@pytest.fixture(scope="module")
def run_dir(config_file, tmp_path_factory):
    """A bigru model trained 1 epoch through the command line, on tiny synthetic data."""
    out = tmp_path_factory.mktemp("bigru_run") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_config, "load_dataset", lambda *a, **kw: tiny_data())
        assert main(["train", "--dataset", "synthetic", "--arch", "bigru", "--epochs", "1", "--config", str(config_file),
                     "--out", str(out), "--quiet", "--no-tensorboard"]) == 0
    return out


def test_train_then_evaluate_reproduces_the_dev_report(run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(run_config, "load_dataset", lambda *a, **kw: tiny_data())
    report = tmp_path / "report.json"
    assert main(["evaluate", "--checkpoint", str(run_dir / "best.pt"), "--dataset", "synthetic", "--split", "dev",
                 "--out", str(report), "--device", "cpu"]) == 0
    got, written = json.loads(report.read_text()), json.loads((run_dir / "report_dev.json").read_text())
    assert got["weighted_f1"] == written["weighted_f1"] and got["confusion"] == written["confusion"]
    (epoch,) = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epoch["firing_rates"] == {} and epoch["loss"]["hgr"] != 0  # nothing spikes; soft-HGR reads its features


def test_the_checkpoint_round_trips_to_identical_logits(run_dir, tmp_path):
    ckpt = Checkpoint.load(run_dir / "best.pt")
    model = ckpt.model()
    assert ckpt.config.arch == "bigru" and isinstance(model, BiGRUClassifier) and not model.training
    assert not any("core" in name or "fusion" in name for name in ckpt.weights)  # nothing of SpikEmo's beyond the context
    ckpt.save(tmp_path / "again.pt")
    back = Checkpoint.load(tmp_path / "again.pt")
    assert back.config == ckpt.config
    batch = collate(tiny_data().split("dev"), MODALITIES)
    with torch.no_grad():
        logits, again = model(batch).logits, back.model()(batch).logits
    assert logits.shape == (*batch.mask.shape, 7) and torch.equal(logits, again)


def test_the_spiking_commands_refuse_it_clearly(run_dir, tmp_path, config_file, capsys):
    ckpt = str(run_dir / "best.pt")
    for command in (["export", "nir", "--out", str(tmp_path / "m.nir")], ["export", "lava", "--out", str(tmp_path / "lava")],
                    ["lava-run", "--dataset", "synthetic", "--split", "dev", "--out", str(tmp_path / "p.json")]):
        assert main([*command, "--checkpoint", ckpt]) == 2
        assert "'bigru' model, the plain non-spiking baseline: it has no spiking cores" in capsys.readouterr().err
    source = tmp_path / "in.jsonl"
    source.write_text("")
    assert main(["stream", "--checkpoint", ckpt, "--input", str(source)]) == 2
    assert "a 'bigru' checkpoint cannot stream" in capsys.readouterr().err
    assert main(["plot", "raster", "--checkpoint", ckpt, "--dataset", "synthetic", "--dialogue", "0", "--utterance", "0",
                 "--out", str(tmp_path / "r.png")]) == 2
    assert "no spikes to draw" in capsys.readouterr().err
    assert main(["bench", "--dataset", "synthetic", "--arch", "bigru", "--config", str(config_file), "--T", "2",
                 "--epochs", "1", "--out", str(tmp_path / "bench"), "--quiet"]) == 2
    assert "arch 'bigru'" in capsys.readouterr().err and not (tmp_path / "bench").exists()
    assert not any(tmp_path.joinpath(name).exists() for name in ("m.nir", "lava", "p.json", "r.png"))


def test_arch_bigru_on_the_command_line_needs_no_config():
    import argparse

    from neuro_erc.train import add_train_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    assert config_from_args(parser.parse_args(["--dataset", "synthetic", "--arch", "bigru"])).model.context == "bigru"


def test_a_config_naming_another_context_is_refused():
    with pytest.raises(ConfigError, match=r"model\.context: expected 'bigru' with arch 'bigru'"):
        from_dict(TrainConfig, {"arch": "bigru", "model": {"context": "dialoguernn"}})


def test_the_sweep_variant_is_the_baseline_trained_with_cross_entropy():
    base = {**TINY, "dataset": "synthetic", "model": {**TINY["model"], "context": "dialoguernn"},
            "loss": {"ce": 1.0, "dsc": 0.5, "hgr": 0.1, "contrastive": 0.2}}
    spikemo, bigru = sweep.grid(base, ["spikemo", "bigru"], seeds=[0])
    assert bigru.path == "bigru/T32/seed0" and bigru.labels["variant"] == "bigru"
    assert bigru.config["arch"] == "bigru" and bigru.config["model"]["context"] == "bigru"
    assert bigru.config["loss"] == {**spikemo.config["loss"], "dsc": 0.0, "hgr": 0.0, "contrastive": 0.0}
    assert spikemo.config["arch"] == "spikemo" and spikemo.config["model"]["context"] == "dialoguernn"
    (cell,) = sweep.grid(base, ["bigru"], archs=["bigru"])
    assert cell.config["arch"] == "bigru" and cell.path == "bigru/bigru/T32/seed0"
    with pytest.raises(ConfigError, match="variant 'bigru' is arch 'bigru'; it cannot be trained as --arch stream"):
        sweep.grid(base, ["spikemo", "bigru"], archs=["stream"])


def test_erc_results_lists_the_baseline_and_what_each_variant_adds_over_it(config_file, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("erc_results", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(run_config, "load_dataset", lambda *a, **kw: tiny_data())
    monkeypatch.setattr(sweep, "ray_available", lambda: False)
    out = tmp_path / "results.json"
    script.main(["--dataset", "synthetic", "--config", str(config_file), "--seeds", "0", "--variants", "ce_only,bigru",
                 "--runs", str(tmp_path / "runs"), "--out", str(out)])
    variants = json.loads(out.read_text())["variants"]
    assert list(variants) == ["ce_only", "bigru"] and (tmp_path / "runs" / "bigru" / "seed0" / "best.pt").exists()
    assert variants["bigru"]["over_bigru"] == 0.0
    assert variants["ce_only"]["over_bigru"] == round(variants["ce_only"]["mean"] - variants["bigru"]["mean"], 2)
    assert Checkpoint.load(tmp_path / "runs" / "bigru" / "seed0" / "best.pt").config.arch == "bigru"
