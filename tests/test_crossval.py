"""``train --cv K``: folds by dialogue, CV statistics, the epoch rule, a final model that dev does not choose."""
import json

import pytest

import neuro_erc.run_config as run_config
from neuro_erc.cli import main
from neuro_erc.checkpoint import Checkpoint
from neuro_erc.crossval import fold_datasets, summarize
from neuro_erc.data.synthetic import make_synthetic
from neuro_erc.errors import DataError

TINY = {"batch_size": 8, "model": {"modalities": ["t", "a"], "dim": 16, "classifier_hidden": 16, "fusion_layers": 1,
                                   "context": "none", "core": {"dim": 16, "depth": 1, "mlp_ratio": 1, "T": 2}}}


def small(*args, **kwargs):
    return make_synthetic(seed=0, n_train=12, n_dev=4, n_test=2, max_len=6)


def test_folds_partition_the_train_dialogues_and_leave_dev_alone():
    dataset = small()
    folds = fold_datasets(dataset, 3, seed=7)
    train_ids = sorted(d.id for d in dataset.split("train"))
    held_out = [sorted(d.id for d in f.split("dev")) for f in folds]
    assert sorted(i for ids in held_out for i in ids) == train_ids  # every train dialogue held out exactly once
    for fold, ids in zip(folds, held_out):
        assert not set(ids) & {d.id for d in fold.split("train")}
        assert sorted([d.id for d in fold.split("train")] + ids) == train_ids
        assert not {d.id for d in dataset.split("dev")} & {d.id for d in fold.split("train")}
    assert [sorted(d.id for d in f.split("dev")) for f in fold_datasets(dataset, 3, seed=7)] == held_out  # seeded
    with pytest.raises(DataError, match="--cv 13"):
        fold_datasets(dataset, 13, seed=0)


def test_summary_takes_the_argmax_of_the_mean_curve_over_common_epochs():
    curves = [[10.0, 30.0, 20.0, 90.0], [20.0, 40.0, 10.0]]  # fold 0 ran one epoch more
    s = summarize(curves)
    assert s["mean_curve"] == [15.0, 35.0, 15.0]
    assert s["chosen_epochs"] == 2
    assert s["fold_best_weighted_f1"] == [90.0, 40.0]
    assert s["cv_weighted_f1_mean"] == 65.0 and s["cv_weighted_f1_std"] == pytest.approx(35.36, abs=0.01)


def test_cv_command_trains_folds_then_a_final_model_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run_config, "load_dataset", small)
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    argv = ["train", "--dataset", "synthetic", "--epochs", "3", "--config", str(tmp_path / "tiny.json"),
            "--cv", "2", "--out", str(tmp_path / "cv"), "--quiet", "--no-tensorboard"]
    assert main(argv) == 0
    cv = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert cv["k"] == 2 and cv["fold_dialogues"] == [6, 6]
    assert 1 <= cv["chosen_epochs"] <= 3
    final = Checkpoint.load(tmp_path / "cv" / "final" / "best.pt")
    assert final.epoch == cv["chosen_epochs"] - 1 and final.config.selection == "last"
    report = json.loads((tmp_path / "cv" / "final" / "report_dev.json").read_text())
    assert report["weighted_f1"] == cv["dev_weighted_f1"] and report["n_utterances"] == sum(map(len, small().split("dev")))
    before = (tmp_path / "cv" / "fold0" / "metrics.jsonl").stat().st_mtime_ns
    assert main(argv) == 0  # finished folds are not trained again
    assert (tmp_path / "cv" / "fold0" / "metrics.jsonl").stat().st_mtime_ns == before
    assert json.loads((tmp_path / "cv" / "cv.json").read_text()) == cv
    assert "cv_weighted_f1_mean" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:  # argparse refuses K < 2
        main(argv[:-4] + ["--cv", "1", "--out", str(tmp_path / "x")])
    assert refused.value.code == 2
