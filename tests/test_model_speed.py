"""benchmarks/model_speed.py: a --quick run writes positive timings and counts real utterances only."""
import importlib.util
import json
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "model_speed.py"


def load_script():
    spec = importlib.util.spec_from_file_location("model_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_meld_lengths_match_meld_statistics():
    lengths = load_script().meld_lengths(20_000, np.random.default_rng(0))
    assert lengths.min() == 1 and lengths.max() == 24
    assert abs(lengths.mean() - 9.6) < 0.3 and abs(lengths.std() - 5.8) < 0.3


def test_quick_run_writes_positive_timings_and_counts_real_utterances(tmp_path):
    script = load_script()
    out = tmp_path / "speed.json"
    script.main(["--quick", "--devices", "cpu", "--threads", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["config"]["model"]["context"] == "bigru" and result["config"]["model"]["modalities"] == ["t"]
    (row,) = result["rows"]
    assert "error" not in row, row
    assert row["device"] == "cpu" and row["T"] == 2 and row["train_steps"] == 2
    for key in ("utterances_per_s", "seconds_per_step_median", "infer_ms_median", "infer_ms_p90",
                "infer_ms_per_utterance", "peak_rss_gib"):
        assert row[key] > 0, key
    assert row["infer_ms_p90"] >= row["infer_ms_median"]

    # The same data the child generated: the timed batches are the dialogues after the warm-up ones.
    n_warm = row["warmup_steps"] * row["batch_size"]
    n_train = n_warm + row["train_steps"] * row["batch_size"]
    data = script.meld_shaped(n_train, script.INFER_WARMUP + row["infer_dialogues"], ["t"], row["seed"])
    timed = data.split("train")[n_warm:]
    assert row["train_utterances"] == sum(len(d) for d in timed)
    assert row["train_utterances"] < row["train_steps"] * row["batch_size"] * 24  # padding is not counted
    assert row["infer_lengths"] == [len(d) for d in data.split("test")[script.INFER_WARMUP:]]
    assert row["infer_utterances"] == sum(row["infer_lengths"])
    assert abs(row["utterances_per_s"] * sum(row["step_seconds"]) / row["train_utterances"] - 1) < 1e-2  # steps rounded
