"""Exports are inputs: ``export nir`` and ``export lava`` each write one artefact, ``lava-run --nir`` /
``--plan`` runs that artefact once it is checked against its checkpoint, and a damaged, foreign
or mismatched artefact is refused in one line (exit 2) naming the file and what is wrong.

Tiny untrained models (D=16, one block, T=8) on the synthetic data; the Lava runs need Python 3.10.
"""
import json
import sys

import nir
import numpy as np
import pytest
import torch

from neuro_erc.checkpoint import Checkpoint
from neuro_erc.cli import main
from neuro_erc.data.synthetic import DEFAULT_DIMS, SYNTHETIC_LABELS
from neuro_erc.errors import ExportError
from neuro_erc.export import (
    LavaCore, LavaUnavailable, build_plan, core_fingerprint, dialogue_currents, dialogue_spikes, exported_core,
    lava_available, load_graph, load_plans, record_core, simulate_nir,
)
from neuro_erc.model.spikemo import ModelConfig, SpikEmo
from neuro_erc.run_config import TrainConfig
from neuro_erc.snn.core import CoreConfig

T, LENGTH = 8, 6
lava_only = pytest.mark.skipif(not lava_available(), reason="Lava (lava-nc 0.10 / lava-dl 0.6) needs Python 3.10")
PARITY_KEYS = {"spike_agreement", "prediction_agreement", "weighted_f1_norse", "weighted_f1_lava", "n_dialogues",
               "precision", "lava_seconds", "norse_seconds", "spike_agreement_trained", "prediction_agreement_trained",
               "weighted_f1_trained", "spike_agreement_by_node"}
SPIKE_MEASURES = ("spike_jaccard", "firing_rate_norse", "firing_rate_lava", "mismatches_per_spike", "spike_mismatches")


def write_checkpoint(path, modalities=("t",), seed=0, T=T, **core):
    torch.manual_seed(seed)
    model_cfg = ModelConfig(modalities=modalities, input_dims={m: DEFAULT_DIMS[m] for m in modalities}, n_classes=7,
                            dim=16, context="none", fusion_layers=1, classifier_hidden=16,
                            core=CoreConfig(dim=16, heads=2, depth=1, mlp_ratio=2, T=T, **core))
    Checkpoint(TrainConfig(dataset="synthetic", model=model_cfg), list(SYNTHETIC_LABELS.labels),
               SpikEmo(model_cfg).state_dict(), epoch=0, best_f1=0.0, best_epoch=0).save(path)
    return path


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """Checkpoints by name: one modality, two (and the same two with other weights), another T."""
    root = tmp_path_factory.mktemp("ckpts")
    return {"t": write_checkpoint(root / "t.pt"), "ta": write_checkpoint(root / "ta.pt", ("t", "a")),
            "ta_other": write_checkpoint(root / "ta_other.pt", ("t", "a"), seed=1),
            "t_T4": write_checkpoint(root / "t_T4.pt", T=4)}


@pytest.fixture(scope="module")
def exported(ckpts, tmp_path_factory):
    """``export nir`` and ``export lava`` of every checkpoint at L = LENGTH: name -> {"nir": file, "plan": dir}."""
    root = tmp_path_factory.mktemp("exports")
    out = {}
    for name, ckpt in ckpts.items():
        out[name] = {"nir": root / f"{name}.nir", "plan": root / f"{name}_plans"}
        for target in ("nir", "lava"):
            path = out[name]["nir" if target == "nir" else "plan"]
            assert main(["export", target, "--checkpoint", str(ckpt), "--out", str(path), "--length", str(LENGTH)]) == 0
    return out


def lava_run(ckpt, out, *flags) -> int:
    return main(["lava-run", "--checkpoint", str(ckpt), "--dataset", "synthetic", "--split", "dev", "--out", str(out), *flags])


# ---------------------------------------------------------------- export nir


@pytest.mark.parametrize("name, modalities", [("t", ["t"]), ("ta", ["t", "a"])])
def test_export_nir_writes_one_file_whose_graphs_simulate_like_norse(ckpts, name, modalities, tmp_path, capsys):
    out = tmp_path / "M.nir"
    assert main(["export", "nir", "--checkpoint", str(ckpts[name]), "--out", str(out), "--length", str(LENGTH)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["M.nir"]  # one file, whatever the number of cores
    model = Checkpoint.load(ckpts[name]).model()
    top = nir.read(out)
    assert top.metadata["format"] == "neuro-erc.cores" and top.metadata["format_version"] == 1
    assert (top.metadata["T"], top.metadata["dialogue_length"]) == (T, LENGTH)
    assert top.metadata["fingerprints"] == {m: core_fingerprint(model.cores[m].core) for m in modalities}

    graphs = load_graph(out)
    assert list(graphs) == modalities
    for i, (m, graph) in enumerate(graphs.items()):
        core = model.cores[m].core
        x = torch.randn(LENGTH, 1, core.in_dim, generator=torch.Generator().manual_seed(i))
        currents = {}
        output, spikes = record_core(exported_core(core), x, torch.ones(LENGTH, 1, dtype=torch.bool), currents)
        ref = dialogue_spikes(spikes, 0, LENGTH)
        sim = simulate_nir(graph, x[:, 0].numpy().T, currents=dialogue_currents(currents, 0, LENGTH))
        assert sum(int(s.sum()) for s in ref.values()) > 0, "an all-silent core would make the comparison empty"
        for node, s in ref.items():
            np.testing.assert_array_equal(sim[node], s, err_msg=f"{m}: {node}")
        np.testing.assert_array_equal(sim["output"], output[:, :, 0].permute(0, 2, 1).numpy())


def test_export_nir_refuses_over_budget_in_one_line(ckpts, tmp_path, capsys):
    code = main(["export", "nir", "--checkpoint", str(ckpts["t"]), "--out", str(tmp_path / "big.nir"),
                 "--length", "50", "--budget-gib", "0.0001"])
    assert code == 2 and "longest dialogue that fits is L=" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("core, message", [({"attention": "ssa"}, "SDSA"), ({"norm": "layer"}, "does not fold")])
def test_cores_that_cannot_export_are_refused_in_one_line(core, message, tmp_path, capsys):
    ckpt = write_checkpoint(tmp_path / "c.pt", **core)
    for target in ("nir", "lava"):
        assert main(["export", target, "--checkpoint", str(ckpt), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("neuro-erc export: error:") and message in err and "Traceback" not in err


def test_a_model_without_cores_is_refused_in_one_line(tmp_path, capsys):
    cfg = ModelConfig(modalities=("t",), input_dims={"t": 48}, n_classes=7, dim=16, context="none", dswa=False,
                      fusion_layers=1, classifier_hidden=16)
    ckpt = tmp_path / "plain.pt"
    Checkpoint(TrainConfig(model=cfg), list(SYNTHETIC_LABELS.labels), SpikEmo(cfg).state_dict(), 0, 0.0, 0).save(ckpt)
    assert main(["export", "nir", "--checkpoint", str(ckpt), "--out", str(tmp_path / "m.nir")]) == 2
    assert "no spiking cores" in capsys.readouterr().err


# ---------------------------------------------------------------- export lava


def test_export_lava_writes_one_plan_per_modality_stamped_with_its_core(ckpts, exported):
    plans = load_plans(exported["ta"]["plan"])
    model = Checkpoint.load(ckpts["ta"]).model()
    assert sorted(plans) == ["a", "t"]
    for m, plan in plans.items():
        assert (plan.T, plan.dialogue_length, plan.fingerprint) == (T, LENGTH, core_fingerprint(model.cores[m].core))


def test_export_lava_replaces_its_own_output_but_no_other_folder(ckpts, tmp_path, capsys):
    out = tmp_path / "plans"
    args = ["export", "lava", "--checkpoint", str(ckpts["ta"]), "--length", "3", "--out"]
    assert main([*args, str(out)]) == 0
    assert main([*args, str(out), "--modality", "t"]) == 0  # a re-export replaces the whole set
    assert sorted(p.name for p in out.iterdir()) == ["t"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plans"]  # no temporary or old copies left
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main([*args, str(tmp_path / "mine")]) == 2
    assert "refusing to replace it" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# ---------------------------------------------------------------- damaged and foreign artefacts


def _hdf5_not_nir(path):
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("weights", data=np.ones(3))


def _foreign_nir(path):
    """A valid NIR file another tool could write: one flat graph."""
    nodes = {"input": nir.Input(input_type=np.array([2])), "output": nir.Output(output_type=np.array([2]))}
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=[("input", "output")]))


NIR_DAMAGE = {
    "random bytes": lambda path, real: path.write_bytes(np.random.default_rng(0).bytes(4096)),
    "empty": lambda path, real: path.write_bytes(b""),
    "truncated": lambda path, real: path.write_bytes(real.read_bytes()[: real.stat().st_size // 2]),
    "HDF5, not NIR": lambda path, real: _hdf5_not_nir(path),
    "foreign NIR": lambda path, real: _foreign_nir(path),
}


@pytest.mark.parametrize("damage", NIR_DAMAGE)
def test_unreadable_nir_files_are_export_errors_naming_the_file(damage, ckpts, exported, tmp_path, capsys):
    path = tmp_path / "bad.nir"
    NIR_DAMAGE[damage](path, exported["t"]["nir"])
    with pytest.raises(ExportError, match="per-modality core graphs") as err:
        load_graph(path)
    assert str(path) in str(err.value)
    assert lava_run(ckpts["t"], tmp_path / "p.json", "--nir", str(path)) == 2
    message = capsys.readouterr().err
    assert str(path) in message and "Traceback" not in message
    assert not (tmp_path / "p.json").exists()


def _rewrite(path, data: bytes) -> None:
    path.write_bytes(data)


PLAN_DAMAGE = {  # what to do to the plan of modality t -> the file the error must name
    "plan.json missing": (lambda d: (d / "plan.json").unlink(), "plan.json"),
    "plan.json not JSON": (lambda d: _rewrite(d / "plan.json", b"{\"format\": "), "plan.json"),
    "plan.json of another kind": (lambda d: _rewrite(d / "plan.json", b"[1, 2]"), "plan.json"),
    "plan.json inconsistent": (lambda d: _rewrite(d / "plan.json", (d / "plan.json").read_bytes().replace(
        b'"size": ', b'"size": 1', 1)), "plan.json"),
    "arrays truncated": (lambda d: _rewrite(d / "arrays.npz", (d / "arrays.npz").read_bytes()[:100]), "arrays.npz"),
    "connection missing": (lambda d: (d / "connection0.npz").unlink(), "connection0.npz"),
}


@pytest.mark.parametrize("damage", PLAN_DAMAGE)
def test_damaged_plans_are_export_errors_naming_the_file(damage, ckpts, tmp_path, capsys):
    plans = tmp_path / "plans"
    assert main(["export", "lava", "--checkpoint", str(ckpts["t"]), "--out", str(plans), "--length", "3"]) == 0
    harm, culprit = PLAN_DAMAGE[damage]
    harm(plans / "t")
    with pytest.raises(ExportError, match=culprit) as err:
        load_plans(plans)
    assert str(plans / "t" / culprit) in str(err.value)
    assert lava_run(ckpts["t"], tmp_path / "p.json", "--plan", str(plans)) == 2
    assert str(plans / "t" / culprit) in capsys.readouterr().err


# ---------------------------------------------------------------- pairing with the checkpoint


@pytest.mark.parametrize("artefact_of, ckpt, differs", [
    ("ta_other", "ta", "core 't' has other weights"),
    ("t", "ta", "modalities ['t'], the checkpoint ['a', 't']"),
    ("t_T4", "t", "T=4 steps, the checkpoint's T=8"),
])
@pytest.mark.parametrize("kind", ["nir", "plan"])
def test_an_artefact_from_another_checkpoint_is_refused(kind, artefact_of, ckpt, differs, ckpts, exported, tmp_path,
                                                        capsys):
    path = exported[artefact_of][kind]
    assert lava_run(ckpts[ckpt], tmp_path / "p.json", f"--{kind}", str(path)) == 2
    err = capsys.readouterr().err
    assert f"{path} was not exported from this checkpoint" in err and differs in err
    assert not (tmp_path / "p.json").exists()


def test_dialogues_longer_than_the_artefact_are_refused_with_the_way_out(ckpts, exported, tmp_path, capsys):
    longer = [len(d.utterances) for d in Checkpoint.load(ckpts["t"]).dataset().split("dev") if len(d.utterances) > LENGTH]
    assert lava_run(ckpts["t"], tmp_path / "p.json", "--nir", str(exported["t"]["nir"])) == 2
    err = capsys.readouterr().err
    assert f"{len(longer)} dialogue(s) have more than the L={LENGTH} utterances" in err and f"longest {max(longer)}" in err
    assert f"--max-length {LENGTH}" in err and f"--length {max(longer)}" in err


@pytest.mark.parametrize("flag", ["--limit", "--max-length", "--batch-size"])
@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_lava_run_counts_must_be_positive(ckpts, flag, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        lava_run(ckpts["t"], tmp_path / "p.json", flag, value)
    assert exit_.value.code == 2 and "expected an integer ≥ 1" in capsys.readouterr().err


def test_export_length_must_be_positive(ckpts, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export", "nir", "--checkpoint", str(ckpts["t"]), "--out", str(tmp_path / "m.nir"), "--length", "0"])
    assert exit_.value.code == 2 and "--length" in capsys.readouterr().err


# ---------------------------------------------------------------- running them in Lava


@pytest.mark.lava
@lava_only
@pytest.mark.parametrize("kind", ["checkpoint", "plan", "nir"])
def test_lava_run_runs_the_artefact_spike_exactly(kind, ckpts, exported, tmp_path):
    """Two dialogues of lengths up to L: an artefact cut to each length is spike-exact against Norse."""
    path = ckpts["ta"] if kind == "checkpoint" else exported["ta"][kind]
    flags = [] if kind == "checkpoint" else [f"--{kind}", str(path)]
    out = tmp_path / "parity.json"
    assert lava_run(ckpts["ta"], out, "--limit", "2", "--max-length", str(LENGTH), *flags) == 0
    report = json.loads(out.read_text())
    assert PARITY_KEYS <= set(report) and (report["artefact"], report["artefact_path"]) == (kind, str(path))
    assert report["n_dialogues"] == 2 and report["precision"] == "float"
    assert report["spike_agreement"] == 1.0 and report["prediction_agreement"] == 1.0
    assert report["spike_jaccard"] == 1.0 and report["spike_mismatches"] == 0 and report["mismatches_per_spike"] == 0
    assert report["firing_rate_lava"] == report["firing_rate_norse"] > 0
    assert report["weighted_f1_lava"] == report["weighted_f1_norse"]
    nodes = report["spike_agreement_by_node"]
    assert {name.split(":")[0] for name in nodes} == {"t", "a"}
    for key in SPIKE_MEASURES:  # every measure per node too, over the same nodes
        assert key in report and set(report[f"{key}_by_node"]) == set(nodes), key
    assert "spike_jaccard_trained" in report


@pytest.mark.lava
@lava_only
def test_lava_run_fixed_point_reports_every_measure(ckpts, tmp_path):
    """Fixed point loses spikes to 8-bit weights: Jaccard and mismatches per spike say how many, agreement hides it."""
    out = tmp_path / "parity.json"
    assert lava_run(ckpts["t"], out, "--limit", "1", "--max-length", str(LENGTH), "--precision", "fixed") == 0
    report = json.loads(out.read_text())
    assert PARITY_KEYS <= set(report) and report["precision"] == "fixed"
    for key in SPIKE_MEASURES:
        assert key in report and set(report[f"{key}_by_node"]) == set(report["spike_agreement_by_node"]), key
    assert report["spike_mismatches"] > 0 and report["spike_jaccard"] < report["spike_agreement"]


def test_without_lava_the_lava_commands_name_python_310(ckpts, exported, tmp_path, monkeypatch, capsys):
    """What Python >= 3.11 users see (simulated here by hiding Lava's modules)."""
    monkeypatch.setitem(sys.modules, "lava.magma.core.run_configs", None)
    with pytest.raises(LavaUnavailable, match="Python 3.10"):
        LavaCore(build_plan(load_graph(exported["t"]["nir"])["t"]))
    assert lava_run(ckpts["t"], tmp_path / "p.json", "--limit", "1") == 2
    assert "Lava needs Python 3.10" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()
