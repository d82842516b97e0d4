"""Norse → NIR → reference simulator → Lava on a tiny SDSA core: spike-exact round trips.

Sizes are tiny (D=16, L=5, T=8) so the whole file runs in well under a minute; the Lava tests
need Python 3.10 and skip elsewhere. The commands and their artefacts: ``test_export_artefacts``.
"""
import nir
import numpy as np
import pytest
import torch

from neuro_erc.errors import ExportError
from neuro_erc.export import (
    LavaCore, SpikeTally, build_plan, core_fingerprint, core_shape, core_to_nir, dialogue_currents, dialogue_spikes,
    exported_core, graph_size, lava_available, lif_node, load_graph, load_plan, params_from_lif, record_core,
    restrict_plan, save_graph, save_plan, simulate_nir, spiking_nodes,
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


def norse_dialogue(core: SpikingCore, x: torch.Tensor) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Output [T, D, L], spikes and input currents of the *exported* network in Norse (``exported_core``).

    (Batch norm folded into the Linears, synaptic sums exact before one rounding to float32; the
    trained core, with float32 sums in BLAS's order, may differ where a voltage lands within an
    ulp of the threshold — a property of its arithmetic, not of the export.)
    """
    currents = {}
    output, spikes = record_core(exported_core(core), x, torch.ones(L, 1, dtype=torch.bool), currents)
    return output[:, :, 0].permute(0, 2, 1).numpy(), dialogue_spikes(spikes, 0, L), dialogue_currents(currents, 0, L)


@pytest.fixture(scope="module")
def core():
    return firing_core()


@pytest.fixture(scope="module")
def graph(core, tmp_path_factory):
    """The core's graph through the export file format and back."""
    path = save_graph({"t": core_to_nir(core, L)}, tmp_path_factory.mktemp("nir") / "core.nir")
    return load_graph(path)["t"]


def single_lif_graph(params: NeuronParams, n: int) -> nir.NIRGraph:
    """Input (n,) → LIF: each neuron is driven by its own constant current."""
    nodes = {"input": nir.Input(input_type=np.array([n])), "lif": lif_node(params, (n,)), "output": nir.Output(output_type=np.array([n]))}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "lif"), ("lif", "output")], metadata={"dt": params.dt, "T": 40})


CURRENTS = np.linspace(-0.5, 4.0, 96, dtype=np.float32)


@pytest.mark.parametrize("params", NEURONS)
def test_lif_mapping_round_trip_is_spike_exact(params, tmp_path):
    nir.write(tmp_path / "lif.nir", single_lif_graph(params, CURRENTS.size))
    graph = nir.read(tmp_path / "lif.nir")
    back = params_from_lif(graph.nodes["lif"], graph.metadata["dt"]).norse()
    for field in ("tau_mem_inv", "v_leak", "v_th", "v_reset"):
        assert torch.equal(getattr(back, field), getattr(params.norse(), field)), field
    ref = box_lif_sequence(torch.from_numpy(CURRENTS).expand(40, -1), params).numpy()
    assert 0 < ref.mean() < 1
    np.testing.assert_array_equal(simulate_nir(graph, CURRENTS)["lif"], ref)


def test_graph_layout_and_metadata(core, graph):
    assert graph.metadata["T"] == T and graph.metadata["dt"] == core.cfg.neuron.dt
    assert graph.metadata["dialogue_length"] == L and graph.metadata["fingerprint"] == core_fingerprint(core)
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
        output, spikes, currents = norse_dialogue(core, x)
        assert all(s.any() for s in spikes.values()), "every layer must fire for the test to mean something"
        sim = simulate_nir(graph, x[:, 0].numpy().T, currents=currents)
        assert set(spiking_nodes(graph)) == set(spikes)
        for name, ref in spikes.items():
            np.testing.assert_array_equal(sim[name], ref, err_msg=name)
        np.testing.assert_array_equal(sim["output"], output)


def test_export_refuses_what_it_cannot_express():
    with pytest.raises(ExportError, match="SDSA"):
        core_to_nir(firing_core(depth=1, attention="ssa"), L)
    with pytest.raises(ExportError, match="does not fold"):
        core_to_nir(firing_core(depth=1, norm="layer"), L)


def test_fingerprint_changes_with_any_weight_or_neuron_parameter(core):
    other = firing_core()
    assert core_fingerprint(other) == core_fingerprint(core)
    with torch.no_grad():
        other.blocks[0].mlp.fc2.linear.weight[0, 0] += 1e-6
    assert core_fingerprint(other) != core_fingerprint(core)
    assert core_fingerprint(firing_core(neuron=NeuronParams(v_th=0.9))) != core_fingerprint(core)


def foreign_graph(node: nir.NIRNode) -> nir.NIRGraph:
    """A valid NIR graph of kinds this package does not map: Input → node → LIF → Output."""
    lif = lif_node(NeuronParams(), (4,))
    nodes = {"input": nir.Input(input_type=np.array([4])), "x": node, "lif": lif, "output": nir.Output(output_type=np.array([4]))}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "x"), ("x", "lif"), ("lif", "output")], metadata={"dt": 1e-3, "T": 4})


@pytest.mark.parametrize("node", [nir.Delay(delay=np.ones(4)), nir.Scale(scale=np.ones(4))], ids=["Delay", "Scale"])
def test_foreign_node_kinds_are_refused_as_export_errors(node):
    with pytest.raises(ExportError, match=type(node).__name__):
        simulate_nir(foreign_graph(node), np.ones(4, dtype=np.float32))
    with pytest.raises(ExportError, match=type(node).__name__):
        build_plan(foreign_graph(node))


def test_lava_plan_matches_size_model_and_saves(core, graph, tmp_path):
    plan = build_plan(graph)
    size = graph_size(core_shape(core), L)
    assert (plan.n_neurons, plan.n_synapses, plan.latency) == (size.lava_neurons, size.synapses, size.latency)
    assert sorted(plan.groups) == ["gates0", "input0", "leaky0"] and len(plan.connections) <= 6  # few OS processes, any size
    assert (plan.dialogue_length, plan.fingerprint) == (L, core_fingerprint(core))
    assert_same_plan(load_plan(save_plan(plan, tmp_path / "plan")), plan)


def assert_same_plan(a, b) -> None:
    assert (a.T, a.dt, a.latency, a.input_shape, a.outputs) == (b.T, b.dt, b.latency, b.input_shape, b.outputs)
    assert (a.dialogue_length, a.fingerprint) == (b.dialogue_length, b.fingerprint)
    assert a.populations == b.populations and sorted(a.groups) == sorted(b.groups)
    for name, g in a.groups.items():
        h = b.groups[name]
        assert (g.decay, g.tau, g.size) == (h.decay, h.tau, h.size)
        for field in ("r", "v_leak", "v_th", "v_reset", "bias", "hop"):
            np.testing.assert_array_equal(getattr(g, field), getattr(h, field), err_msg=f"{name}.{field}")
    pairs = [(c.src, c.dst, d.src, d.dst, c.weights, d.weights) for c, d in zip(a.connections, b.connections)]
    pairs += [(c.population, "", d.population, "", c.matrix, d.matrix) for c, d in zip(a.drives, b.drives)]
    assert (len(a.connections), len(a.drives)) == (len(b.connections), len(b.drives))
    for src, dst, src_b, dst_b, w, w_b in pairs:
        assert (src, dst) == (src_b, dst_b) and w.shape == w_b.shape and (w != w_b).nnz == 0, (src, dst)


@pytest.mark.parametrize("length", [1, 2, L - 1, L])
def test_plan_cut_to_a_shorter_dialogue_is_the_plan_built_for_it(core, length):
    """Why an artefact exported for L runs every dialogue up to L: cutting is building at that length."""
    longest = build_plan(core_to_nir(core, L))
    assert_same_plan(restrict_plan(longest, length), build_plan(core_to_nir(core, length)))
    with pytest.raises(ExportError, match=f"L={L}"):
        restrict_plan(longest, L + 1)


@pytest.mark.lava
@lava_only
@pytest.mark.parametrize("params", NEURONS)
def test_lava_lif_mapping_is_spike_exact(params):
    graph = single_lif_graph(params, CURRENTS.size)
    with LavaCore(build_plan(graph), "float") as lava:
        spikes = lava.run(CURRENTS)["lif"]
    np.testing.assert_array_equal(spikes, simulate_nir(graph, CURRENTS)["lif"] > 0)


@pytest.mark.lava
@lava_only
def test_lava_float_is_spike_exact(core, graph):
    """BoxLIF float: every spike of three dialogues streamed through one network (no reset by hand)."""
    with LavaCore(build_plan(graph), "float") as lava:
        for seed in (1, 2, 1):
            x = core_input(seed)
            output, ref, currents = norse_dialogue(core, x)
            spikes = lava.run(x[:, 0].numpy().T, currents)
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
            _, ref, currents = norse_dialogue(core, x)
            scores.append(SpikeTally().add(ref, lava.run(currents=currents)).agreement)
    print(f"{precision} Lava LIF spike agreement {scores}")
    assert floor <= min(scores) <= 1.0
