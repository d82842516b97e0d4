"""Norse → NIR → reference simulator → Lava on a tiny SDSA core: spike-exact round trips.

Sizes are tiny (D=16, L=5, T=8) so the whole file runs in well under a minute; the Lava tests
need Python 3.10 and skip elsewhere.
"""
import json
import sys

import nir
import numpy as np
import pytest
import torch

from neuro_erc.cli import main
from neuro_erc.export import (
    LavaCore, LavaUnavailable, build_plan, core_shape, core_to_nir, dialogue_spikes, graph_size, lava_available, lif_node,
    load_graph, load_plan, params_from_lif, record_core, save_graph, save_plan, simulate_nir, spiking_nodes,
)
from neuro_erc.snn.blocks import MaskedBatchNorm1d
from neuro_erc.snn.core import CoreConfig, SpikingCore
from neuro_erc.snn.lif import box_lif_sequence
from neuro_erc.snn.neuron import NeuronParams

IN_DIM, L, T = 12, 5, 8
lava_only = pytest.mark.skipif(not lava_available(), reason="Lava (lava-nc 0.10 / lava-dl 0.6) needs Python 3.10")
NEURONS = [
    NeuronParams(),
    NeuronParams(tau_mem=0.02, v_th=0.8, v_leak=0.1, v_reset=-0.2),
    NeuronParams(tau_mem=5e-3, dt=0.5e-3, v_th=1.3, v_reset=0.25, v_leak=0.25),
]


def firing_core(depth: int = 2, seed: int = 0, **cfg) -> SpikingCore:
    """A core in eval mode with non-trivial batch-norm statistics, in which every layer fires."""
    torch.manual_seed(seed)
    core = SpikingCore(IN_DIM, CoreConfig(dim=16, heads=2, depth=depth, mlp_ratio=2, T=T, **cfg))
    with torch.no_grad():
        for module in core.modules():
            if isinstance(module, MaskedBatchNorm1d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        for block in core.blocks:  # frequent K∧V, so the context LIF fires within T = 8 steps
            block.attn.k.norm.bias += 8.0
            block.attn.v.norm.bias += 8.0
    return core.eval()


def core_input(seed: int) -> torch.Tensor:
    return torch.randn(L, 1, IN_DIM, generator=torch.Generator().manual_seed(seed))


def norse_dialogue(core: SpikingCore, x: torch.Tensor) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Output [T, D, L] and spikes of the *exported* network in Norse: batch norm folded into the Linears.

    (Folding is exact in real arithmetic; in float32 the unfolded core may differ where a
    voltage lands within an ulp of the threshold — a property of folding, not of the export.)
    """
    output, spikes = record_core(core.folded(), x, torch.ones(L, 1, dtype=torch.bool))
    return output[:, :, 0].permute(0, 2, 1).numpy(), dialogue_spikes(spikes, 0, L)


@pytest.fixture(scope="module")
def core():
    return firing_core()


@pytest.fixture(scope="module")
def graph(core, tmp_path_factory):
    path = save_graph(core_to_nir(core, L), tmp_path_factory.mktemp("nir") / "core.nir")
    return load_graph(path)


def single_lif_graph(params: NeuronParams, n: int) -> nir.NIRGraph:
    """Input (n,) → LIF: each neuron is driven by its own constant current."""
    nodes = {"input": nir.Input(input_type=np.array([n])), "lif": lif_node(params, (n,)), "output": nir.Output(output_type=np.array([n]))}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "lif"), ("lif", "output")], metadata={"dt": params.dt, "T": 40})


CURRENTS = np.linspace(-0.5, 4.0, 96, dtype=np.float32)


@pytest.mark.parametrize("params", NEURONS)
def test_lif_mapping_round_trip_is_spike_exact(params, tmp_path):
    graph = load_graph(save_graph(single_lif_graph(params, CURRENTS.size), tmp_path / "lif.nir"))
    back = params_from_lif(graph.nodes["lif"], graph.metadata["dt"]).norse()
    for field in ("tau_mem_inv", "v_leak", "v_th", "v_reset"):
        assert torch.equal(getattr(back, field), getattr(params.norse(), field)), field
    ref = box_lif_sequence(torch.from_numpy(CURRENTS).expand(40, -1), params).numpy()
    assert 0 < ref.mean() < 1
    np.testing.assert_array_equal(simulate_nir(graph, CURRENTS)["lif"], ref)


def test_graph_layout_and_metadata(core, graph):
    assert graph.metadata["T"] == T and graph.metadata["dt"] == core.cfg.neuron.dt
    assert tuple(graph.nodes["input"].input_type["input"]) == (IN_DIM, L)
    assert tuple(graph.nodes["output"].output_type["output"]) == (16, L)
    convs = [n for n in graph.nodes.values() if isinstance(n, nir.Conv1d)]
    assert all(c.groups == 1 for c in convs) and len(convs) == 1 + 2 * 8  # 6 Linears + sum + broadcast per block
    ands = [n for n, node in graph.nodes.items() if isinstance(node, nir.Threshold)]
    assert len(ands) == 4 and all(sum(dst == a for _, dst in graph.edges) == 2 for a in ands)
    # the residual stream after two blocks is 5 spike trains: encoder, 2 × (proj, fc2)
    assert sum(dst == "output" for _, dst in graph.edges) == 5


def test_reference_simulator_reproduces_norse_exactly(core, graph):
    for seed in (1, 2):
        x = core_input(seed)
        output, spikes = norse_dialogue(core, x)
        assert all(s.any() for s in spikes.values()), "every layer must fire for the test to mean something"
        sim = simulate_nir(graph, x[:, 0].numpy().T)
        assert set(spiking_nodes(graph)) == set(spikes)
        for name, ref in spikes.items():
            np.testing.assert_array_equal(sim[name], ref, err_msg=name)
        np.testing.assert_array_equal(sim["output"], output)


def test_export_refuses_what_it_cannot_express():
    with pytest.raises(NotImplementedError, match="SDSA"):
        core_to_nir(firing_core(depth=1, attention="ssa"), L)
    with pytest.raises(ValueError, match="does not fold"):
        core_to_nir(firing_core(depth=1, norm="layer"), L)


def test_lava_plan_matches_size_model_and_saves(core, graph, tmp_path):
    plan = build_plan(graph)
    size = graph_size(core_shape(core), L)
    assert (plan.n_neurons, plan.n_synapses, plan.latency) == (size.lava_neurons, size.synapses, size.latency)
    assert sorted(plan.groups) == ["gates0", "input0", "leaky0"] and len(plan.connections) <= 6  # few OS processes, any size
    back = load_plan(save_plan(plan, tmp_path / "plan"))
    assert back.populations == plan.populations and back.outputs == plan.outputs
    for a, b in zip(plan.connections, back.connections):
        assert (a.src, a.dst) == (b.src, b.dst) and (a.weights != b.weights).nnz == 0


@pytest.mark.lava
@lava_only
@pytest.mark.parametrize("params", NEURONS)
def test_lava_lif_mapping_is_spike_exact(params):
    graph = single_lif_graph(params, CURRENTS.size)
    with LavaCore(build_plan(graph), "float") as lava:
        spikes = lava.run(CURRENTS)["lif"]
    np.testing.assert_array_equal(spikes, simulate_nir(graph, CURRENTS)["lif"] > 0)


def agreement(spikes: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> float:
    return float(np.mean(np.concatenate([(spikes[n] == (ref[n] > 0)).ravel() for n in ref])))


@pytest.mark.lava
@lava_only
def test_lava_float_is_spike_exact(core, graph):
    """BoxLIF float: every spike of three dialogues streamed through one network (no reset by hand)."""
    with LavaCore(build_plan(graph), "float") as lava:
        for seed in (1, 2, 1):
            x = core_input(seed)
            output, ref = norse_dialogue(core, x)
            spikes = lava.run(x[:, 0].numpy().T)
            for name in ref:
                np.testing.assert_array_equal(spikes[name], ref[name] > 0, err_msg=name)
            np.testing.assert_array_equal(lava.output(spikes), output)


@pytest.mark.lava
@lava_only
@pytest.mark.parametrize("precision, floor", [("float", 0.99), ("fixed", 0.95)])
def test_lava_standard_lif_agrees(core, graph, precision, floor):
    """Lava's own LIF: float64 (exact up to float32 ties) and Loihi fixed point (8-bit weights)."""
    with LavaCore(build_plan(graph), precision, neuron="lif") as lava:
        scores = []
        for seed in (1, 2):
            x = core_input(seed)
            scores.append(agreement(lava.run(x[:, 0].numpy().T), norse_dialogue(core, x)[1]))
    print(f"{precision} Lava LIF spike agreement {scores}")
    assert floor <= min(scores) <= 1.0


# ---------------------------------------------------------------- commands


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from neuro_erc.config import to_dict
    from neuro_erc.data.synthetic import SYNTHETIC_LABELS
    from neuro_erc.model.spikemo import ModelConfig, SpikEmo
    from neuro_erc.train import TrainConfig

    torch.manual_seed(0)
    model_cfg = ModelConfig(modalities=("t",), input_dims={"t": 48}, n_classes=7, dim=16, context="none",
                            fusion_layers=1, classifier_hidden=16,
                            core=CoreConfig(dim=16, heads=2, depth=1, mlp_ratio=2, T=T))
    cfg = TrainConfig(dataset="synthetic", model=model_cfg)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    torch.save({"config": to_dict(cfg), "labels": list(SYNTHETIC_LABELS.labels), "model": SpikEmo(model_cfg).state_dict()}, path)
    return path


def test_export_commands_write_nir_and_lava_plan(checkpoint, tmp_path, capsys):
    assert main(["export", "nir", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "m.nir"), "--length", "6"]) == 0
    graph = load_graph(tmp_path / "m.nir")
    assert tuple(graph.nodes["input"].input_type["input"]) == (16, 6)
    assert main(["export", "lava", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "lava"), "--length", "6"]) == 0
    assert load_plan(tmp_path / "lava" / "t_L6").T == T
    code = main(["export", "nir", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "big.nir"),
                 "--length", "50", "--budget-gib", "0.0001"])
    assert code == 2 and "longest dialogue that fits is L=" in capsys.readouterr().err


@pytest.mark.lava
@lava_only
def test_lava_run_writes_parity_report(checkpoint, tmp_path):
    out = tmp_path / "parity.json"
    assert main(["lava-run", "--checkpoint", str(checkpoint), "--dataset", "synthetic", "--split", "dev",
                 "--precision", "float", "--limit", "2", "--max-length", "6", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    keys = {"spike_agreement", "prediction_agreement", "weighted_f1_norse", "weighted_f1_lava", "n_dialogues",
            "precision", "lava_seconds", "norse_seconds"}
    assert keys <= set(report) and report["n_dialogues"] == 2 and report["precision"] == "float"
    assert report["spike_agreement"] == 1.0 and report["prediction_agreement"] == 1.0
    assert report["weighted_f1_lava"] == report["weighted_f1_norse"]


def test_without_lava_the_lava_commands_name_python_310(checkpoint, tmp_path, monkeypatch, capsys):
    """What Python >= 3.11 users see (simulated here by hiding Lava's modules)."""
    monkeypatch.setitem(sys.modules, "lava.magma.core.run_configs", None)
    with pytest.raises(LavaUnavailable, match="Python 3.10"):
        LavaCore(build_plan(single_lif_graph(NEURONS[0], 4)))
    code = main(["lava-run", "--checkpoint", str(checkpoint), "--dataset", "synthetic", "--split", "dev",
                 "--limit", "1", "--out", str(tmp_path / "p.json")])
    assert code == 2 and "Lava needs Python 3.10" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()
