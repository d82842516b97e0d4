"""The stream model: causal, blind to padding, the same alone, in a batch or streamed; and its pieces."""
import math

import pytest
import torch

from neuro_erc.config import from_dict
from neuro_erc.data.batching import collate
from neuro_erc.data.synthetic import make_synthetic
from neuro_erc.errors import ConfigError
from neuro_erc.losses import total_loss, LossConfig
from neuro_erc.model import build_model
from neuro_erc.model.stream import StreamModel, dialogue_speaker_codes, speaker_code
from neuro_erc.run_config import TrainConfig
from neuro_erc.snn.lif import box_lif_sequence
from neuro_erc.snn.neuron import NeuronParams
from neuro_erc.snn.stateful import BoxLIF, CubaLIF, LeakyIntegrator, tau_for_memory

MODALITIES = ["t", "a"]


def stream_config(**changes) -> TrainConfig:
    values = {"arch": "stream", "model": {
        "modalities": MODALITIES, "input_dims": {"t": 12, "a": 8}, "n_classes": 7, "dropout": 0.1,
        "core": {"dim": 16, "depth": 1, "mlp_ratio": 2, "T": 3}}}
    values.update(changes)
    return from_dict(TrainConfig, values)


@pytest.fixture(scope="module")
def data():
    return make_synthetic(seed=2, n_train=6, n_dev=5, n_test=1, dims={"t": 12, "a": 8, "v": 8}, max_len=7)


@pytest.fixture(scope="module")
def model(data):
    torch.manual_seed(0)
    model = build_model(stream_config())
    batch = collate(data.split("train"), MODALITIES)
    with torch.no_grad():  # training-mode passes: running statistics that are not the init's
        for _ in range(3):
            model(batch)
    return model.eval()


def step_inputs(dialogue) -> list[tuple[dict, torch.Tensor, torch.Tensor]]:
    """``model.step``'s inputs for each utterance: features, speaker index (order of first turn), same-speaker flag."""
    speakers, inputs = {}, []
    for i, utt in enumerate(dialogue.utterances):
        index = torch.tensor([speakers.setdefault(utt.speaker, len(speakers))])
        same = torch.tensor([i > 0 and utt.speaker == dialogue.utterances[i - 1].speaker])
        inputs.append(({m: torch.from_numpy(utt.features[m])[None] for m in MODALITIES}, index, same))
    return inputs


def stream_dialogue(model, dialogue) -> torch.Tensor:
    """Logits [L, C] of ``dialogue`` fed to ``model.step`` one utterance at a time."""
    state = {}
    with torch.no_grad():
        return torch.stack([model.step(*inputs, state)[0] for inputs in step_inputs(dialogue)])


def test_build_model_follows_arch_and_there_is_no_spikemo_core(model):
    assert isinstance(model, StreamModel)
    assert not hasattr(model, "cores")  # SpikEmo's export/energy code reads model.cores: it must not find one here
    assert type(build_model(from_dict(TrainConfig, {"model": {"input_dims": {"t": 4, "a": 4, "v": 4}}}))).__name__ == "SpikEmo"


def test_predictions_do_not_depend_on_later_utterances(model, data, assert_causal):
    assert_causal(model, data.split("dev"), MODALITIES)


def test_padding_and_batch_company_do_not_change_a_dialogue(model, data):
    dialogues = data.split("dev")
    batch = collate(dialogues, MODALITIES)
    for m in MODALITIES:  # garbage where the padding is
        batch.features[m][~batch.mask] = 1e3
    with torch.no_grad():
        together = model(batch).logits
        for b, dialogue in enumerate(dialogues):
            alone = model(collate([dialogue], MODALITIES)).logits[:, 0]
            assert torch.equal(together[: len(dialogue), b], alone)
    assert batch.mask.sum() < batch.mask.numel()  # there was padding


def test_streaming_utterance_by_utterance_equals_the_batch_forward(model, data):
    dialogues = data.split("dev")
    with torch.no_grad():
        batch_logits = model(collate(dialogues, MODALITIES)).logits
    for b, dialogue in enumerate(dialogues):
        assert torch.equal(stream_dialogue(model, dialogue), batch_logits[: len(dialogue), b])


def test_a_batch_prefix_continues_by_steps_from_its_state(model, data):
    dialogue = data.split("dev")[1]
    k = 3
    prefix = collate([dialogue], MODALITIES)
    state = {}
    with torch.no_grad():
        head = model(type(prefix)({m: x[:k] for m, x in prefix.features.items()}, prefix.mask[:k],
                                  prefix.speakers[:k], prefix.labels[:k], prefix.dialogue_ids), state).logits[:, 0]
        streamed = stream_dialogue(model, dialogue)
        assert torch.equal(head, streamed[:k])
        nxt = model.step(*step_inputs(dialogue)[k], state)
    assert torch.equal(nxt[0], streamed[k])


def test_training_reaches_every_parameter_and_reports_rates(data):
    torch.manual_seed(1)
    model = build_model(stream_config(loss={"ce": 1.0, "hgr": 0.1, "contrastive": 0.1}))
    batch = collate(data.split("train"), MODALITIES)
    out = model(batch)
    L, B = batch.mask.shape
    assert out.logits.shape == (L, B, 7) and out.hidden.shape == (L, B, 2 * 16)
    assert {m: f.shape for m, f in out.features.items()} == {m: (L, B, 16) for m in MODALITIES}
    real = batch.mask.reshape(-1)
    loss, _ = total_loss(LossConfig(ce=1.0, hgr=0.1, contrastive=0.1), out.logits.reshape(-1, 7)[real],
                         batch.labels.reshape(-1)[real], {m: f.reshape(-1, 16)[real] for m, f in out.features.items()},
                         fused_feats=out.hidden.reshape(-1, 32)[real])
    loss.backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent
    rates = model.firing_rates()
    assert {"t.encoder.lif", "t.blocks.0.attn.context", "a.blocks.0.fc2.lif"} <= set(rates)
    assert all(0 < r < 1 for r in rates.values())


def test_depth_zero_is_an_encoder_and_a_readout(data):
    model = build_model(stream_config(model={"modalities": ["t"], "input_dims": {"t": 12}, "n_classes": 7,
                                             "core": {"dim": 8, "depth": 0, "T": 2}})).eval()
    with torch.no_grad():
        assert model(collate(data.split("dev"), ["t"])).logits.shape[-1] == 7
    assert set(model.firing_rates()) == {"t.encoder.lif"}


# ---- pieces ---------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [1, 2, 8])
@pytest.mark.parametrize("h", [0.5, 1.0, 8.0])
def test_a_memory_of_h_windows_keeps_exp_minus_one_over_h_per_window(T, h):
    dt = 1e-3
    tau = float(tau_for_memory(h, T, dt))
    assert tau > dt
    assert (1 - dt / tau) ** T == pytest.approx(math.exp(-1 / h), rel=1e-12)


def test_box_lif_in_chunks_is_the_whole_sequence_bit_for_bit():
    torch.manual_seed(0)
    current = torch.randn(12, 3, 5) * 2 + 0.5
    params = NeuronParams()
    lif = BoxLIF(params, 5)
    state = {}
    chunks = torch.cat([lif(current[:5], None, state), lif(current[5:], None, state)])
    assert torch.equal(chunks, box_lif_sequence(current, params))
    assert 0 < chunks.mean() < 1


def test_context_current_is_a_leaky_sum_that_spikes_do_not_reset():
    params = NeuronParams(v_th=0.5)
    tau_syn = torch.tensor([2e-3, 8e-3], dtype=torch.float64)
    lif = CubaLIF(params, tau_syn)
    state, x, n = {}, 0.3, 20
    spikes = lif(torch.full((n, 1, 2), x), None, state)
    decay = 1 - params.dt / tau_syn
    expected = x * decay * (1 - decay**n) / (1 - decay)  # i_k = decay (i_{k-1} + x)
    assert torch.allclose(state[lif].i[0].double(), expected, rtol=1e-5)
    assert spikes.sum() > 0  # it fired, and the current still is the closed form: no reset


def test_readout_integrator_is_a_leaky_average():
    li = LeakyIntegrator(3, tau=4e-3, dt=1e-3)
    v = li(torch.full((6, 1, 3), 2.0), None, None)
    assert torch.allclose(v[:, 0, 0], 2.0 * (1 - 0.75 ** torch.arange(1, 7.0)))
    assert li.last_rate is None


def test_speaker_codes():
    speakers = torch.tensor([[0], [1], [1], [0], [2], [0]])
    mask = torch.tensor([[True]] * 5 + [[False]])
    codes = dialogue_speaker_codes(speakers, mask, slots=2)
    assert codes[:, 0].tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert torch.equal(speaker_code(torch.tensor([2]), torch.tensor([True]), 2), torch.tensor([[0.0, 1.0, 1.0]]))


@pytest.mark.parametrize("changes, key", [
    ({"arch": "transformer"}, "arch"),
    ({"model": {"core": {"attention": "ssa"}}}, "model.core.attention"),
    ({"model": {"core": {"norm": "layer"}}}, "model.core.norm"),
    ({"model": {"stream": {"context_memory": [8, 1]}}}, "model.stream.context_memory"),
    ({"model": {"stream": {"max_speakers": 0}}}, "model.stream.max_speakers"),
    ({"model": {"stream": {"readout_memory": 0}}}, "model.stream.readout_memory"),
])
def test_bad_stream_configs_are_refused_by_key(changes, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        from_dict(TrainConfig, {"arch": "stream", **changes})
