"""End-to-end training on tiny synthetic data: reports, checkpoints, resume, evaluate."""
import json
from dataclasses import replace

import pytest
import torch

from neuro_erc.cli import main
from neuro_erc.config import from_dict
from neuro_erc.data import DialogueDataset, LabelSet
from neuro_erc.data.synthetic import make_synthetic
from neuro_erc.errors import TrainingDiverged
from neuro_erc.losses import LossConfig
from neuro_erc.model.spikemo import ModelConfig
from neuro_erc.snn.core import CoreConfig
from neuro_erc.checkpoint import Checkpoint
from neuro_erc.train import TrainConfig, selection_key, train

REPORT_KEYS = {"weighted_f1", "accuracy", "per_class_f1", "labels", "confusion", "n_utterances", "split", "dataset"}


def tiny_config(**overrides) -> TrainConfig:
    model = ModelConfig(
        modalities=("t", "a", "v"), dim=16, context="bigru", fusion_layers=1, classifier_hidden=16,
        core=CoreConfig(dim=16, heads=2, depth=1, T=2),
    )
    values = dict(epochs=3, batch_size=8, lr=3e-3, seed=3, model=model, loss=LossConfig(ce=1.0, dsc=0.5, hgr=0.1))
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def tiny_data():
    return make_synthetic(seed=1, n_train=24, n_dev=8, n_test=8, dims={"t": 12, "a": 8, "v": 8}, max_len=8)


def test_train_writes_run_directory(tmp_path, tiny_data):
    report = train(tiny_config(), tmp_path, show_progress=False, dataset=tiny_data)
    assert REPORT_KEYS <= set(report) and report["split"] == "dev"
    assert report["n_utterances"] == sum(len(d) for d in tiny_data.split("dev"))
    assert {p.name for p in tmp_path.iterdir()} >= {"config.json", "metrics.jsonl", "best.pt", "last.pt", "report_dev.json"}
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1, 2]
    assert set(lines[0]["loss"]) >= {"ce", "dsc", "hgr", "total"}
    assert lines[0]["firing_rates"] and all(0 <= r <= 1 for r in lines[0]["firing_rates"].values())
    best = max(r["dev_weighted_f1"] for r in lines)
    assert report["weighted_f1"] == best
    saved = from_dict(TrainConfig, json.loads((tmp_path / "config.json").read_text()))
    assert saved.model.input_dims == {"t": 12, "a": 8, "v": 8} and saved.model.n_classes == 7


def test_resume_ends_with_the_same_weights(tmp_path, tiny_data, monkeypatch):
    full, part = tmp_path / "full", tmp_path / "part"
    train(tiny_config(epochs=3), full, show_progress=False, dataset=tiny_data)

    import neuro_erc.train as train_module
    real_evaluate, calls = train_module.evaluate_split, []

    def killed_in_epoch_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies after epoch 1 was checkpointed
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate_split", killed_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(epochs=3), part, show_progress=False, dataset=tiny_data)
    monkeypatch.setattr(train_module, "evaluate_split", real_evaluate)
    assert Checkpoint.load(part / "last.pt").epoch == 0
    train(tiny_config(epochs=3), part, resume=True, show_progress=False, dataset=tiny_data)
    a, b = Checkpoint.load(full / "last.pt").weights, Checkpoint.load(part / "last.pt").weights
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (full / "metrics.jsonl").read_text().count("\n") == (part / "metrics.jsonl").read_text().count("\n") == 3


def test_resume_refuses_a_different_config(tmp_path, tiny_data):
    train(tiny_config(epochs=1), tmp_path, show_progress=False, dataset=tiny_data)
    with pytest.raises(ValueError, match="different config"):
        train(tiny_config(epochs=1, lr=1e-2), tmp_path, resume=True, show_progress=False, dataset=tiny_data)


def test_init_starts_from_a_checkpoints_weights_and_refuses_another_model(tmp_path, tiny_data, monkeypatch):
    train(tiny_config(epochs=1), tmp_path / "base", show_progress=False, dataset=tiny_data)
    base = Checkpoint.load(tmp_path / "base" / "best.pt").weights

    import neuro_erc.train as train_module
    started = {}

    def first_epoch(model, *args, **kwargs):  # the weights as training begins
        started.update({k: v.clone() for k, v in model.state_dict().items()})
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train_epoch", first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(init=str(tmp_path / "base" / "best.pt")), tmp_path / "tuned", show_progress=False, dataset=tiny_data)
    assert started.keys() == base.keys() and all(torch.equal(started[k], base[k]) for k in base)
    other = tiny_config(init=str(tmp_path / "base" / "best.pt"), model=replace(tiny_config().model, dim=8))
    with pytest.raises(ValueError, match=r"another model \(model.dim differ\)"):
        train(other, tmp_path / "other", show_progress=False, dataset=tiny_data)


def script_dev_epochs(monkeypatch, script):
    """Make each epoch's dev report say the (W-F1, firing rate) of ``script``, in turn."""
    import neuro_erc.train as train_module
    real_evaluate, scripted = train_module.evaluate_split, iter(script)

    def scripted_dev(*args, **kwargs):
        report = real_evaluate(*args, **kwargs)
        assert 0 < report["firing_rate"] < 1  # the real split's rate, replaced by the script below
        f1, rate = next(scripted)
        return {**report, "weighted_f1": f1, "firing_rate": rate}

    monkeypatch.setattr(train_module, "evaluate_split", scripted_dev)


BUDGET = LossConfig(ce=1.0, rate=1.0, rate_target=0.05)


def test_a_spike_budget_selects_among_the_epochs_within_it_also_across_a_resume(tmp_path, tiny_data, monkeypatch):
    script_dev_epochs(monkeypatch, [(60.0, 0.20), (55.0, 0.12), (50.0, 0.04), (55.0, 0.03), (70.0, 0.10)])
    budget = tiny_config(epochs=2, patience=5, loss=BUDGET)
    train(budget, tmp_path, show_progress=False, dataset=tiny_data)
    assert Checkpoint.load(tmp_path / "best.pt").best_epoch == 1  # none within budget yet: the nearest to it
    train(replace(budget, epochs=5), tmp_path, resume=True, show_progress=False, dataset=tiny_data)
    best = Checkpoint.load(tmp_path / "best.pt")
    assert (best.best_epoch, best.best_f1) == (3, 55.0)  # within the budget, the best; 70 at rate 0.10 breaks it
    logged = [json.loads(line)["dev_firing_rate"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logged == [0.20, 0.12, 0.04, 0.03, 0.10]


def test_a_budget_per_synapse_is_checked_on_the_dev_synaptic_rate():
    cfg = from_dict(TrainConfig, {"arch": "stream", "loss": {"rate": 1.0, "rate_target": 0.05, "rate_per_synapse": True}})
    dev = {"weighted_f1": 50.0, "firing_rate": 0.20, "synaptic_rate": 0.04}
    assert selection_key(dev, cfg) == (True, 50.0)
    assert selection_key({**dev, "synaptic_rate": 0.08}, cfg) == (False, -0.08)
    assert selection_key(dev, replace(cfg, loss=replace(cfg.loss, rate_per_synapse=False))) == (False, -0.20)


def test_patience_waits_until_an_epoch_is_within_the_spike_budget(tmp_path, tiny_data, monkeypatch):
    script_dev_epochs(monkeypatch, [(60.0, 0.20), (61.0, 0.25), (62.0, 0.30), (50.0, 0.04), (49.0, 0.04), (48.0, 0.04)])
    train(tiny_config(epochs=6, patience=1, loss=BUDGET), tmp_path, show_progress=False, dataset=tiny_data)
    assert Checkpoint.load(tmp_path / "best.pt").best_epoch == 3  # not stopped after epoch 2, over budget
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 5  # then stopped by patience, within it


def test_ablations_train(tmp_path, tiny_data):
    cfg = tiny_config(epochs=1, loss=LossConfig(ce=1.0))
    cfg.model.dswa = False
    report = train(cfg, tmp_path, show_progress=False, dataset=tiny_data)
    assert 0 <= report["weighted_f1"] <= 100
    assert "core" not in "".join(Checkpoint.load(tmp_path / "best.pt").weights)


def test_cli_train_and_evaluate(tmp_path, capsys):
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({
        "batch_size": 16,
        "model": {"dim": 16, "context": "none", "fusion_layers": 1, "classifier_hidden": 16,
                  "core": {"dim": 16, "heads": 2, "depth": 1}},
    }))
    run = tmp_path / "run"
    assert main(["train", "--dataset", "synthetic", "--epochs", "1", "--T", "2", "--modalities", "t,a",
                 "--config", str(config), "--out", str(run), "--quiet"]) == 0
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--dataset", "synthetic",
                 "--split", "dev", "--out", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert report["weighted_f1"] == json.loads((run / "report_dev.json").read_text())["weighted_f1"]
    assert "W-F1" in capsys.readouterr().out
    assert main(["train", "--dataset", "synthetic", "--modalities", "t,x", "--out", str(tmp_path / "bad")]) == 2


def test_checkpoint_commands_load_the_trained_text_features(tmp_path, monkeypatch, capsys):
    """A model trained on fine-tuned text features is evaluated on them, not on MiniLM's (same width)."""
    import neuro_erc.run_config as train_mod

    run = tmp_path / "run"
    assert main(["train", "--dataset", "synthetic", "--epochs", "1", "--T", "2", "--modalities", "t",
                 "--text-model", "encoders/tuned", "--out", str(run), "--quiet"]) == 0
    assert json.loads((run / "config.json").read_text())["text_model"] == "encoders/tuned"
    calls, returned = [], [make_synthetic()]
    monkeypatch.setattr(train_mod, "load_dataset", lambda *a, **kw: calls.append((a, kw)) or returned[0])
    argv = ["evaluate", "--checkpoint", str(run / "best.pt"), "--dataset", "meld", "--data", "x",
            "--split", "dev", "--out", str(tmp_path / "r.json")]
    assert main(argv) == 0
    assert calls == [(("meld", "x"), {"text_model": "encoders/tuned", "variant": None})]
    synthetic = returned[0]
    other_labels = LabelSet("other", tuple(reversed(synthetic.labels.labels)))
    returned[0] = DialogueDataset("other", other_labels, synthetic.splits)
    assert main(argv) == 2  # a dataset with other labels is refused, naming the checkpoint and both label lists
    assert f"{run / 'best.pt'}: checkpoint labels" in capsys.readouterr().err


def test_resume_extends_a_finished_run_and_cleans_temp_files_of_a_killed_write(tmp_path, tiny_data):
    train(tiny_config(epochs=1), tmp_path, show_progress=False, dataset=tiny_data)
    stale = tmp_path / ".best.pt.abc123.tmp"
    stale.write_bytes(b"")  # what a kill during the best.pt write leaves
    train(tiny_config(epochs=2), tmp_path, resume=True, show_progress=False, dataset=tiny_data)
    assert not stale.exists()
    assert Checkpoint.load(tmp_path / "last.pt").epoch == 1
    assert [json.loads(line)["epoch"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [0, 1]


def test_a_diverging_run_stops_with_a_clear_error(tmp_path, tiny_data):
    with pytest.raises(TrainingDiverged, match="lower --lr"):
        train(tiny_config(epochs=3, lr=1e30), tmp_path, show_progress=False, dataset=tiny_data)


def test_out_must_be_a_directory(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["train", "--dataset", "synthetic", "--epochs", "1", "--out", str(tmp_path / "file"), "--quiet"]) == 2
    assert "a file is there" in capsys.readouterr().err


def test_tensorboard_logs_losses_dev_score_lr_and_firing_rates(tmp_path, tiny_data):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny_config(epochs=2), tmp_path, show_progress=False, dataset=tiny_data)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/total", "loss/ce", "dev/weighted_f1", "dev/accuracy", "lr", "seconds_per_epoch"} <= tags
    assert any(t.startswith("firing_rate/t.") for t in tags)
    logged = [e.value for e in events.Scalars("dev/weighted_f1")]
    expected = [json.loads(line)["dev_weighted_f1"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logged == pytest.approx(expected)
    train(tiny_config(epochs=1), tmp_path / "quiet", show_progress=False, dataset=tiny_data, tensorboard=False)
    assert not (tmp_path / "quiet" / "tb").exists()
