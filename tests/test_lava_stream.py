"""Lava as a stream: one compiled network of the streaming graph runs dialogues of several lengths,
utterance after utterance, spike for spike with the numpy simulator and the Norse model."""
import json

import numpy as np
import pytest

from neuro_erc.cli import main
from neuro_erc.errors import ExportError
from neuro_erc.export.lava_build import lava_lif_network
from neuro_erc.export.lava_run import lava_available
from neuro_erc.export.lava_stream import StreamLava, stream_lava_parity, stream_plan
from neuro_erc.export.spike_measures import SpikeTally
from neuro_erc.export.stream_graph import StreamGraphRunner, stream_to_nir
from neuro_erc.export.stream_parity import dialogue_turns, graph_stream

lava_only = pytest.mark.skipif(not lava_available(), reason="Lava (lava-nc 0.10 / lava-dl 0.6) needs Python 3.10")
MODALITIES = ["t", "a"]
DIMS = {"t": 12, "a": 8}


def test_the_plan_holds_both_cores_the_context_and_the_readout(stream_model):
    plan = stream_plan(stream_to_nir(stream_model))
    kinds = {g.kind for g in plan.groups.values()}
    assert kinds == {"box", "cuba", "li"} and len(plan.input_groups) == 1  # one group's bias is written per utterance
    assert {p.name for p in plan.node_populations()} >= {f"{m}.blocks.1.attn.context" for m in MODALITIES} | {"readout"}
    assert plan.populations["readout"].hop == plan.latency  # the readout waits for both modalities' streams
    with pytest.raises(ExportError, match="no mapping onto Lava's standard"):
        lava_lif_network(plan)  # CubaLIF/LI are float only (standard and fixed-point LIF refused), and say so


@lava_only
def test_one_network_streams_dialogues_of_every_length_spike_for_spike(stream_model, stream_data):
    graph = stream_to_nir(stream_model)
    runner = StreamGraphRunner(graph)
    dialogues = stream_data.split("dev")[:4]
    assert len({len(d.utterances) for d in dialogues}) >= 3
    tally = SpikeTally()
    with StreamLava(graph) as lava:
        for d in dialogues:
            turns = dialogue_turns(d, MODALITIES)
            logits, spikes, _ = graph_stream(lava, turns)
            ref_logits, ref_spikes, _ = graph_stream(runner, turns)
            assert set(spikes) == set(ref_spikes)  # every LIF, AND and CubaLIF node of both cores
            tally.add(ref_spikes, spikes)
            np.testing.assert_array_equal(logits, ref_logits, err_msg=f"dialogue {d.id}")  # the LI readout, bit for bit
        # without a reset the state carries on: the first dialogue then differs from its run from rest
        turns = dialogue_turns(dialogues[0], MODALITIES)
        carried = [lava.utterance(*turn)[1] for turn in turns]
        assert lava.graphs_compiled == 1
    counts = tally.total
    assert counts.mismatches == 0 and counts.jaccard == 1.0 and counts.rate_reference > 0.01
    assert tally.by_node["t.blocks.1.attn.qc"].both > 0 and tally.by_node["a.blocks.0.attn.context"].both > 0
    rest = StreamGraphRunner(graph)
    fresh = [rest.utterance(*turn)[1] for turn in turns]
    assert any((c[n] != (f[n] != 0)).any() for c, f in zip(carried, fresh) for n in f)


@lava_only
@pytest.mark.parametrize("model", ["stream_model", "stream_model_mlp_on_attention"])
def test_parity_report_against_norse(model, stream_data, request):
    stream_model = request.getfixturevalue(model)
    dialogues = stream_data.split("dev")[:4]
    report = stream_lava_parity(stream_model, stream_to_nir(stream_model), dialogues, [str(i) for i in range(7)], "synthetic", "dev")
    assert report["spike_mismatches"] == 0 and report["spike_jaccard"] == 1.0 and report["spike_agreement"] == 1.0
    assert report["prediction_agreement"] == 1.0 and report["firing_rate_norse"] > 0.01
    assert report["graphs_compiled"] == {"t": 1, "a": 1} and report["lava_ms_per_utterance"] > 0
    assert report["max_logit_difference"] < 1e-5  # Norse sums the modalities' readout currents in float32
    assert len(report["lengths"]) >= 3 and report["n_dialogues"] == len(dialogues)


@lava_only
def test_lava_run_on_a_stream_checkpoint(stream_run, tmp_path, capsys):
    out = tmp_path / "PARITY.json"
    assert main(["lava-run", "--checkpoint", str(stream_run / "best.pt"), "--dataset", "synthetic", "--split", "dev",
                 "--limit", "2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["graphs_compiled"] == {"t": 1} and report["spike_mismatches"] == 0
    assert report["prediction_agreement"] == 1.0 and report["artefact"] == "checkpoint"
    assert main(["lava-run", "--checkpoint", str(stream_run / "best.pt"), "--dataset", "synthetic", "--split", "dev",
                 "--precision", "fixed", "--out", str(tmp_path / "x.json")]) == 2
    assert "float" in capsys.readouterr().err
