"""``neuro-erc bench`` on tiny synthetic data: contract columns, plots, per-T resumability."""
import csv
import json
import math

import pytest

import neuro_erc.bench as bench
import neuro_erc.data.registry as registry
import neuro_erc.run_config as train_module
import neuro_erc.sweep as sweep
from neuro_erc.cli import main
from neuro_erc.data.synthetic import make_synthetic

CONTRACT = ["T", "weighted_f1", "spikes_per_utterance", "firing_rate", "sops_per_utterance", "energy_uj_45nm",
            "energy_uj_loihi", "ann_energy_uj_45nm", "train_seconds", "infer_ms_per_dialogue"]
TINY = {"batch_size": 8, "model": {"modalities": ["t", "a"], "dim": 16, "classifier_hidden": 16, "fusion_layers": 1,
                                   "context": "none", "core": {"dim": 16, "depth": 1, "mlp_ratio": 1}}}


@pytest.fixture
def tiny_synthetic(monkeypatch):
    """``--dataset synthetic`` at a few dialogues, so a bench over two T's takes seconds."""
    def small(name, data=None, **kwargs):
        return make_synthetic(seed=0, n_train=16, n_dev=6, n_test=2, max_len=6)

    for module in (registry, train_module):
        monkeypatch.setattr(module, "load_dataset", small)


@pytest.fixture
def bench_args(tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    return ["bench", "--dataset", "synthetic", "--T", "2,4", "--epochs", "1", "--out", str(tmp_path / "bench"),
            "--config", str(config), "--quiet"]


def read_rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_bench_writes_contract_columns_plots_and_resumes_per_T(tiny_synthetic, bench_args, tmp_path, monkeypatch):
    out = tmp_path / "bench"
    assert main(bench_args) == 0
    with open(out / "results.csv") as fh:
        header = next(csv.reader(fh))
    assert header[: len(CONTRACT)] == CONTRACT
    rows = read_rows(out / "results.csv")
    assert [int(r["T"]) for r in rows] == [2, 4]
    for row in rows:
        values = {k: float(row[k]) for k in CONTRACT}
        assert all(math.isfinite(v) for v in values.values())
        assert 0 <= values["weighted_f1"] <= 100 and 0 < values["firing_rate"] < 1
        assert values["energy_uj_45nm"] > 0 and values["ann_energy_uj_45nm"] > 0
        assert values["train_seconds"] > 0 and values["infer_ms_per_dialogue"] > 0
        # the ANN twin runs once, so it does not depend on T; the SNN's exact SOPs are the 45 nm energy
        assert float(row["ann_energy_uj_45nm"]) == float(rows[0]["ann_energy_uj_45nm"])
        e_expected = (float(row["sops_per_utterance"]) * 0.9 + float(row["macs_per_utterance"]) * 4.6) * 1e-6
        assert float(row["energy_uj_45nm"]) == pytest.approx(e_expected, rel=1e-4)
    assert [r["T"] for r in json.loads((out / "results.json").read_text())] == [2, 4]
    assert_whole_model_columns(rows)
    for name in ("wf1_vs_T.png", "energy_vs_T.png", "firing_rates.png", "pareto.png"):
        assert (out / name).stat().st_size > 5000
    details = json.loads((out / "T2" / "energy.json").read_text())
    assert {"t.encoder.lif", "a.blocks.0.attn.kv_and"} <= {layer["layer"] for layer in details["layers"]}
    assert details["sources"]["loihi"].startswith("M. Davies")

    # a re-run trains nothing and measures the same counts
    def no_training(*args, **kwargs):
        raise AssertionError("a finished T was trained again")

    monkeypatch.setattr(sweep, "train", no_training)
    assert main(bench_args) == 0
    again = read_rows(out / "results.csv")
    for key in ("weighted_f1", "sops_per_utterance", "energy_uj_45nm", "train_seconds"):
        assert [r[key] for r in again] == [r[key] for r in rows]

    # an unfinished T (the bench died while training it) resumes; the finished one is left alone
    (out / "T4" / sweep.DONE).unlink()
    calls = []
    monkeypatch.setattr(sweep, "train", lambda cfg, run_dir, **kw: calls.append((run_dir.name, kw["resume"])))
    assert main(bench_args) == 0
    assert calls == [("T4", True)]
    assert (out / "T4" / sweep.DONE).exists()


WHOLE = ["energy_uj_whole", "energy_uj_whole_memory", "ann_energy_uj_whole", "ann_energy_uj_whole_memory",
         "qann_energy_uj_whole", "qann_energy_uj_whole_memory", "encoder_energy_uj"]


def assert_whole_model_columns(rows):
    for row in rows:
        values = {k: float(row[k]) for k in WHOLE}
        assert all(math.isfinite(v) and v > 0 for v in values.values())
        # every layer and the memory term come on top of the core-only figure
        assert float(row["energy_uj_45nm"]) < values["energy_uj_whole"] < values["energy_uj_whole_memory"]
        assert values["ann_energy_uj_whole"] < values["ann_energy_uj_whole_memory"]
        assert int(row["qann_bits"]) == int(row["T"]).bit_length()


def test_bench_measures_the_stream_architecture(tiny_synthetic, bench_args, tmp_path):
    out = tmp_path / "bench"
    assert main(bench_args[:4] + ["2"] + bench_args[5:] + ["--arch", "stream"]) == 0
    rows = read_rows(out / "results.csv")
    assert [r["arch"] for r in rows] == ["stream"] and 0 < float(rows[0]["firing_rate"]) < 1
    assert_whole_model_columns(rows)
    assert float(rows[0]["host_macs_per_utterance"]) == 0  # the host only builds the input
    layers = {layer["layer"]: layer for layer in json.loads((out / "T2" / "energy.json").read_text())["layers"]}
    assert layers["t.blocks.0.attn.context"]["kind"] == "cubalif"
    assert layers["readout.integrator"]["kind"] == "li" and layers["t.blocks.0.attn.kv_and"]["kind"] == "and"


def test_bench_sweeps_spike_budgets_and_plots_the_pareto_front(tiny_synthetic, bench_args, tmp_path):
    out = tmp_path / "bench"
    args = bench_args[:4] + ["2"] + bench_args[5:] + ["--rate-targets", "0.05,0.2", "--rate-weight", "50"]
    assert main(args) == 0
    rows = read_rows(out / "results.csv")
    assert [r["rate_target"] for r in rows] == ["", "0.2", "0.05"]
    assert [float(r["rate_weight"]) for r in rows] == [0, 50, 50]
    assert (out / "T2_rate0.05" / "best.pt").exists() and (out / "pareto.png").stat().st_size > 5000
    assert_whole_model_columns(rows)


def test_budgets_from_base_start_from_the_plain_model_of_their_T(tiny_synthetic, bench_args, tmp_path):
    out = tmp_path / "bench"
    args = bench_args[:4] + ["2"] + bench_args[5:] + ["--rate-targets", "0.05", "--rate-weight", "50", "--rate-from-base",
                                                      "--budget-epochs", "2", "--rate-per-layer"]
    assert main(args) == 0
    rows = read_rows(out / "results.csv")
    assert [(r["rate_target"], r["rate_from_base"], r["rate_per_layer"]) for r in rows] == [
        ("", "False", "False"), ("0.05", "True", "True")]
    tuned = json.loads((out / "T2_rate0.05_per_layer_from_base" / "config.json").read_text())
    assert tuned["init"] == str((out / "T2" / "best.pt").resolve()) and tuned["loss"]["rate"] == 50
    assert tuned["loss"]["rate_per_layer"] and tuned["epochs"] == 2 != json.loads((out / "T2" / "config.json").read_text())["epochs"]
    for row, cell in zip(rows, ["T2", "T2_rate0.05_per_layer_from_base"]):  # what selection saw is what the bench counts
        dev = json.loads((out / cell / "report_dev.json").read_text())
        assert float(row["firing_rate"]) == pytest.approx(dev["firing_rate"], rel=1e-4)


def test_a_stream_budget_per_synapse_is_selected_and_reported_on_the_synaptic_rate(tiny_synthetic, bench_args, tmp_path):
    out = tmp_path / "bench"
    args = bench_args[:4] + ["2"] + bench_args[5:] + ["--arch", "stream", "--rate-targets", "0.05", "--rate-weight", "50",
                                                      "--rate-from-base", "--budget-epochs", "1", "--rate-per-synapse"]
    assert main(args) == 0
    rows = read_rows(out / "results.csv")
    assert [(r["rate_per_synapse"], r["rate_per_layer"]) for r in rows] == [("False", "False"), ("True", "False")]
    tuned = json.loads((out / "T2_rate0.05_per_synapse_from_base" / "config.json").read_text())
    assert tuned["loss"]["rate_per_synapse"] and not tuned["loss"]["rate_per_layer"]
    for row, cell in zip(rows, ["T2", "T2_rate0.05_per_synapse_from_base"]):
        dev = json.loads((out / cell / "report_dev.json").read_text())
        assert 0 < float(row["synaptic_rate"]) == pytest.approx(dev["synaptic_rate"], rel=1e-4)
    assert main(args + ["--rate-per-layer"]) == 2  # one kind of budget


def test_bench_refuses_an_architecture_without_spikes(tiny_synthetic, tmp_path, capsys):
    config = tmp_path / "bigru.json"
    config.write_text(json.dumps({"arch": "bigru", "model": {"context": "bigru"}}))
    assert main(["bench", "--dataset", "synthetic", "--T", "2", "--out", str(tmp_path / "b"), "--config", str(config)]) == 2
    assert "arch 'bigru' has no spikes to count" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["", "0.1,x", "0,0.1", "1", "0.1,0.1"])
def test_bad_rate_target_lists_are_refused(text):
    with pytest.raises(ValueError, match="--rate-targets"):
        bench.parse_rates(text)


def test_bench_refuses_a_finished_T_trained_with_another_config(tiny_synthetic, bench_args, tmp_path, capsys):
    assert main(bench_args[:4] + ["2"] + bench_args[5:]) == 0
    changed = [a if a != "1" else "2" for a in bench_args]  # --epochs 2
    assert main(changed[:4] + ["2"] + changed[5:]) == 2
    assert "different config (differs in ['epochs'])" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["", "2,x", "0,4", "4,4"])
def test_bad_T_lists_are_refused(text):
    with pytest.raises(ValueError, match="--T"):
        bench.parse_Ts(text)


def test_parse_Ts_sorts():
    assert bench.parse_Ts("8, 2,4") == [2, 4, 8]


def test_pareto_front_keeps_only_points_nothing_beats():
    from neuro_erc.viz import pareto_front

    points = [(10.0, 50.0), (5.0, 48.0), (20.0, 49.0), (5.0, 47.0), (30.0, 52.0)]
    assert pareto_front(points) == [(5.0, 48.0), (10.0, 50.0), (30.0, 52.0)]
