"""``export nir`` on a stream model: one graph streams dialogues of every length, spike for spike
with the Norse model, and another NIR consumer (nirtorch + Norse's modules) reproduces it."""
import json
from functools import partial

import nir
import numpy as np
import pytest
import torch

from neuro_erc.cli import main
from neuro_erc.errors import ExportError
from neuro_erc.export import load_graph
from neuro_erc.export.nir_graph import listed_modalities
from neuro_erc.export.nir_sim import Stepper
from neuro_erc.export.stream_parity import dialogue_turns, graph_stream, norse_stream, stream_parity
from neuro_erc.export.stream_graph import (
    StreamGraphRunner, load_stream_graph, model_fingerprint, save_stream_graph, stream_to_nir,
)

MODALITIES = ["t", "a"]
DIMS = {"t": 12, "a": 8}
NIR_TYPES = {nir.Input, nir.Output, nir.Affine, nir.LIF, nir.CubaLIF, nir.LI}


@pytest.fixture(scope="module")
def graph_file(stream_model, tmp_path_factory):
    return save_stream_graph(stream_to_nir(stream_model), tmp_path_factory.mktemp("stream_nir") / "model.nir")


def test_one_graph_streams_dialogues_of_every_length_spike_for_spike(stream_model, stream_data, graph_file):
    runner = StreamGraphRunner(load_stream_graph(graph_file))
    dialogues = stream_data.split("dev")
    assert len({len(d.utterances) for d in dialogues}) >= 3  # several lengths through the same graph
    for d in dialogues:
        turns = dialogue_turns(d, MODALITIES)
        norse_logits, norse_spikes, _ = norse_stream(stream_model, turns)
        logits, spikes, _ = graph_stream(runner, turns)
        for name, z in norse_spikes.items():
            np.testing.assert_array_equal(spikes[name], z, err_msg=f"dialogue {d.id}, {name}")
        # the model sums the modalities' readout currents in float32, the graph's edges in float64
        np.testing.assert_allclose(logits, norse_logits, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(logits.argmax(-1), norse_logits.argmax(-1))
    assert sum(spikes[n].sum() for n in spikes if n.endswith(".qc")) > 0  # the AND units spike too
    report = stream_parity(stream_model, runner, dialogues)
    assert report["spike_mismatches"] == 0 and report["prediction_agreement"] == 1.0
    assert report["spike_jaccard"] == 1.0 and report["firing_rate_norse"] > 0.01  # a silent network would not pass
    assert set(report["spike_jaccard_by_node"]) == set(norse_spikes)


def test_an_mlp_reading_the_attention_is_wired_so_and_streams_spike_for_spike(stream_model_mlp_on_attention, stream_data):
    model = stream_model_mlp_on_attention
    graph = stream_to_nir(model)
    edges = set(graph.nodes["t"].edges)
    assert ("blocks.0.attn.proj.lif", "blocks.0.fc1.synapse") in edges
    assert ("encoder.lif", "blocks.0.fc1.synapse") not in edges and ("blocks.0.fc2.lif", "blocks.1.fc1.synapse") not in edges
    report = stream_parity(model, StreamGraphRunner(graph), stream_data.split("dev"))
    assert report["spike_mismatches"] == 0 and report["spike_jaccard"] == 1.0 and report["firing_rate_norse"] > 0.01


def test_the_graph_is_typed_streaming_and_made_of_common_nodes(stream_model, graph_file):
    graph = load_stream_graph(graph_file)
    meta = graph.metadata
    assert meta["streaming"] and meta["T"] == 3 and meta["dt"] == stream_model.cfg.core.neuron.dt
    assert meta["fingerprint"] == model_fingerprint(stream_model) and listed_modalities(meta) == MODALITIES
    for m in MODALITIES:
        core = graph.nodes[m]
        assert {type(node) for node in core.nodes.values()} <= NIR_TYPES
        core.check_types()  # NIR's own type check passes on what was read back
        assert graph.nodes[f"input_{m}"].input_type["input"].tolist() == [DIMS[m] + stream_model.slots + 1]
    ands = [node for name, node in Stepper(graph).graph.nodes.items() if name.endswith((".kv", ".qc"))]
    assert len(ands) == 2 * 2 * len(MODALITIES)
    assert all(np.all(node.tau == meta["dt"]) and np.all(node.v_threshold == 1.5) for node in ands)


def test_nirtorch_with_norse_modules_reproduces_a_core_spike_for_spike(stream_model, stream_data, graph_file):
    """A second consumer: nirtorch 2.6's ``nir_to_torch`` with Norse's node mapping runs a
    modality's core graph (everything but the readout LI, which Norse does not import)."""
    nirtorch = pytest.importorskip("nirtorch")
    from norse.torch.utils.import_nir import _import_norse_module

    graph = load_stream_graph(graph_file)
    dt, T = graph.metadata["dt"], graph.metadata["T"]
    mapping = partial(_import_norse_module, dt=dt)  # nirtorch's own Affine mapping drops the bias
    consumer = nirtorch.nir_to_torch(graph.nodes["t"], {nir.Affine: mapping, nir.LIF: mapping, nir.CubaLIF: mapping})
    ours = Stepper(graph.nodes["t"], dt=dt)
    state, theirs, reference = None, [], []
    for d in stream_data.split("dev")[:2]:
        for features, speaker, same in dialogue_turns(d, MODALITIES):
            x = np.concatenate([features["t"], StreamGraphRunner.code(speaker, same, stream_model.slots)])
            for _ in range(T):  # the input is held over the window; one call per step, batch of 1
                with torch.no_grad():
                    out = consumer(torch.from_numpy(x)[None], *([state] if state is not None else []))
                *terms, state = out  # nirtorch does not sum an Output's in-edges: the residual's terms
                theirs.append(sum(terms)[0].numpy())
                reference.append(ours.step({"input": x})["output"])
    theirs, reference = np.stack(theirs), np.stack(reference)
    assert reference.sum() > 100
    np.testing.assert_array_equal(theirs, reference)


def test_export_nir_on_a_stream_checkpoint_and_its_refusals(stream_run, tmp_path, capsys):
    out = tmp_path / "m.nir"
    assert main(["export", "nir", "--checkpoint", str(stream_run / "best.pt"), "--out", str(out)]) == 0
    assert "streaming" in capsys.readouterr().out
    graph = load_stream_graph(out)
    assert graph.metadata["streaming"] and graph.metadata["T"] == 2
    assert main(["export", "nir", "--checkpoint", str(stream_run / "best.pt"), "--out", str(tmp_path / "x.nir"),
                 "--modality", "t"]) == 2
    assert "drop --modality" in capsys.readouterr().err and not (tmp_path / "x.nir").exists()
    with pytest.raises(ExportError, match="not one of format 'neuro-erc.cores'"):
        load_graph(out)  # the per-length SpikEmo reader refuses the streaming file, and says why
    damaged = tmp_path / "damaged.nir"
    damaged.write_bytes(out.read_bytes()[:200])
    with pytest.raises(ExportError, match="damaged.nir: not a readable NIR file"):
        load_stream_graph(damaged)
    json_file = tmp_path / "x.json"
    json_file.write_text(json.dumps({"not": "nir"}))
    with pytest.raises(ExportError, match="streaming NIR graph"):
        load_stream_graph(json_file)
