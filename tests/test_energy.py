"""Operation counters against hand-counted cases, and energy arithmetic against the table."""
import pytest
import torch
from torch import nn

from neuro_erc.energy import (
    CMOS_45NM,
    LOIHI,
    CoreCounter,
    Product,
    cmos,
    energy,
    per_utterance,
    products_of,
)
from neuro_erc.energy.counting import count_ssa_av, count_ssa_qk
from neuro_erc.snn.core import CoreConfig, SpikingCore
from neuro_erc.snn.lif import LIF
from neuro_erc.snn.neuron import NeuronParams

# τ_mem = dt: the membrane forgets at once, so a step spikes exactly when its current > v_th
MEMORYLESS = NeuronParams(tau_mem=1e-3, dt=1e-3, v_th=0.5)


class LinearOn(nn.Module):
    """A 'core' that applies one Linear to whatever it is given: forward(x, mask)."""

    def __init__(self, d_in, d_out):
        super().__init__()
        self.fc = nn.Linear(d_in, d_out)

    def forward(self, x, mask):
        return self.fc(x)


class AndOfTwo(nn.Module):
    """Two memoryless LIF layers on the two halves of the current, and their AND."""

    def __init__(self, d):
        super().__init__()
        self.d = d
        self.a, self.b = LIF(MEMORYLESS, d), LIF(MEMORYLESS, d)

    def forward(self, current, mask):
        return self.a(current[..., : self.d], mask) * self.b(current[..., self.d :], mask)


def count(core, x, mask, products=()):
    with CoreCounter(core, products) as counter:
        core(x, mask)
    return counter.counts


def test_linear_fed_by_spikes_is_input_spikes_times_fan_out():
    T, L, B = 2, 3, 1
    s = torch.zeros(T, L, B, 5)
    s[0, 0, 0, 1] = s[1, 0, 0, 4] = s[1, 1, 0, 0] = 1  # 3 spikes at real utterances
    s[0, 2, 0, 2] = 1  # a spike at a padded utterance: not counted
    mask = torch.tensor([[True], [True], [False]])
    layer = count(LinearOn(5, 4), s, mask).layers["fc"]
    assert layer.sops == 3 * 4
    assert layer.sops_convention == pytest.approx(12)  # fr·T·FLOPs = (3 / (5·2·2))·2·(5·4·2)
    assert layer.macs == 0
    assert layer.ann_macs == 5 * 4 * 2  # one dense pass over the 2 real utterances


def test_integer_residual_input_counts_each_unit():
    s = torch.zeros(1, 1, 1, 3)
    s[0, 0, 0, 0], s[0, 0, 0, 2] = 2, 1  # a residual sum of spikes: 2 + 1 units
    layer = count(LinearOn(3, 4), s, torch.ones(1, 1, dtype=torch.bool)).layers["fc"]
    assert layer.sops == 3 * 4


def test_analog_first_layer_is_charged_macs_once_per_real_utterance():
    x = torch.randn(4, 2, 5)  # [L, B, D_in]: computed once, held over T
    mask = torch.tensor([[True, True], [True, False], [False, False], [False, False]])
    layer = count(LinearOn(5, 3), x, mask).layers["fc"]
    assert (layer.macs, layer.held_macs, layer.sops) == (5 * 3 * 3, 5 * 3 * 3, 0)
    per_step = count(LinearOn(5, 3), torch.randn(6, 4, 2, 5), mask).layers["fc"]  # recomputed each of 6 steps
    assert (per_step.macs, per_step.held_macs, per_step.ann_macs) == (6 * 45, 0, 45)


def test_and_of_known_spike_trains_counts_coincidences():
    a = torch.tensor([1.0, 1, 0, 1, 0])  # over T = 5 steps, one neuron
    b = torch.tensor([1.0, 0, 0, 1, 1])
    current = torch.stack([a, b], -1)[:, None, None, :]  # [T, 1, 1, 2]
    core = AndOfTwo(1)
    counts = count(core, current, torch.ones(1, 1, dtype=torch.bool), [Product("ab", "and", ("a", "b"))])
    assert counts.layers["ab"].sops == 2  # steps 0 and 3
    assert counts.layers["ab"].sops_convention == pytest.approx(3 / 5 * 5 * 1)  # fr_a·T·FLOPs(L·D = 1)
    assert counts.layers["a"].spikes == 3 and counts.layers["b"].spikes == 3


def test_firing_rate_ignores_padded_utterances():
    core = AndOfTwo(2)
    current = torch.ones(4, 3, 2, 4)  # every neuron would fire at every step
    mask = torch.tensor([[True, True], [True, False], [False, False]])
    counts = count(core, current, mask)
    a = counts.layers["a"]
    assert a.neuron_steps == 2 * 4 * 3  # neurons × T × real utterances
    assert a.firing_rate == 1.0
    assert counts.utterances == 3


def test_ssa_counts_match_explicit_attention_matrices():
    torch.manual_seed(0)
    T, L, B, D, H = 3, 5, 2, 8, 2
    q, k, v = ((torch.rand(T, L, B, D) < 0.4).float() for _ in range(3))

    def heads(x):
        return x.view(T, L, B, H, D // H).permute(0, 2, 3, 1, 4)

    A = heads(q) @ heads(k).transpose(-1, -2)  # [T, B, H, L, L]
    assert count_ssa_qk(q, k, H) == A.sum()
    # (Q·Kᵀ)·V: every unit of A_ij meets every spike V_jd of its head
    assert count_ssa_av(v, q, k, H) == (A.sum(-2, keepdim=True).transpose(-1, -2) * heads(v)).sum()
    assert count_ssa_av(v, q, k, H) == (A @ heads(v)).sum()


@pytest.mark.parametrize("attention", ["sdsa", "ssa"])
def test_spiking_core_counts_are_consistent(attention):
    torch.manual_seed(0)
    cfg = CoreConfig(dim=8, heads=2, depth=1, mlp_ratio=2, T=4, attention=attention, norm="none",
                     neuron=NeuronParams(v_th=0.05))
    core = SpikingCore(6, cfg).eval()
    mask = torch.tensor([[True, True], [True, True], [True, False]])
    x = torch.randn(3, 2, 6) * mask[..., None]
    counts = count(core, x, mask, products_of(core))
    layers = counts.layers
    assert {i.name for i in core.layers()} <= set(layers)
    assert layers["encoder.linear"].macs == 6 * 8 * 5
    # the q projection is fed by the encoder's spikes: SOPs = spikes × fan-out
    assert layers["encoder.lif"].spikes > 0
    assert layers["blocks.0.attn.q.linear"].sops == layers["encoder.lif"].spikes * 8
    for name, rate in core.last_firing_rates.items():
        assert layers[name].firing_rate == pytest.approx(rate)
    product_kinds = {layers[p.name].kind for p in products_of(core)}
    assert product_kinds == ({"and"} if attention == "sdsa" else {"ssa_qk", "ssa_av"})


def test_product_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match="unknown kind"):
        Product("p", "xor", ("a", "b"))
    with pytest.raises(ValueError, match="takes 3 operands"):
        Product("p", "ssa_av", ("a", "b"))
    with pytest.raises(ValueError, match="operand 'c' is not a LIF module.*'a', 'b'"):
        CoreCounter(AndOfTwo(1), [Product("p", "and", ("a", "c"))])


def test_energy_arithmetic_follows_the_table():
    per_utt = {"spikes": 10.0, "neuron_steps": 100.0, "active_neuron_steps": 60.0, "sops": 1000.0,
               "sops_convention": 3000.0, "macs": 200.0, "held_macs": 200.0, "ann_macs": 5000.0}
    e = energy(per_utt, T=4)
    assert CMOS_45NM["fp32"].ac_pj == 0.9 and CMOS_45NM["fp32"].mac_pj == 4.6
    assert e["energy_uj_45nm"] == pytest.approx((1000 * 0.9 + 200 * 4.6) * 1e-6)  # 1000 SOPs = 0.0009 µJ
    assert e["energy_uj_45nm_convention"] == pytest.approx((3000 * 0.9 + 200 * 4.6) * 1e-6)
    assert e["energy_uj_45nm_encoder_per_step"] == pytest.approx((1000 * 0.9 + 4 * 200 * 4.6) * 1e-6)
    assert e["energy_uj_45nm_with_neurons"] == pytest.approx((1000 * 0.9 + 200 * 4.6 + 100 * 5.5) * 1e-6)
    assert e["energy_uj_loihi"] == pytest.approx((1000 * 23.6 + 60 * 81 + 40 * 52 + 10 * 1.7 + 200 * 4.6) * 1e-6)
    assert e["ann_energy_uj_45nm"] == pytest.approx(5000 * 4.6e-6)
    assert energy(per_utt, T=4, precision="int8")["energy_uj_45nm"] == pytest.approx((1000 * 0.03 + 200 * 0.23) * 1e-6)
    assert LOIHI.synaptic_op_pj == 23.6
    with pytest.raises(ValueError, match="fp64.*fp16"):
        cmos("fp64")


def test_per_utterance_sums_cores_and_divides_by_their_utterances():
    core = AndOfTwo(1)
    mask = torch.ones(2, 1, dtype=torch.bool)
    c1 = count(core, torch.ones(3, 2, 1, 2), mask)  # 2 utterances, every neuron fires every step
    c2 = count(core, torch.zeros(3, 2, 1, 2), mask)
    per_utt = per_utterance({"t": c1, "a": c2})
    assert per_utt["spikes"] == (2 * 3 * 2) / 2  # two layers × 3 steps × 2 utterances / 2 utterances
    assert per_utt["neuron_steps"] == 2 * (2 * 3)


# ---- whole-model counts and energy (hand-counted from layer shapes and recorded spikes) -----------

from neuro_erc.config import from_dict  # noqa: E402
from neuro_erc.data.batching import collate  # noqa: E402
from neuro_erc.data.synthetic import make_synthetic  # noqa: E402
from neuro_erc.energy import HostCounter, count_whole, encoder_energy, whole_energy, whole_per_utterance  # noqa: E402
from neuro_erc.energy.constants import ENCODERS, qmac_pj, quantised_bits  # noqa: E402
from neuro_erc.model import build_model  # noqa: E402
from neuro_erc.run_config import TrainConfig  # noqa: E402
from neuro_erc.snn.stateful import BoxLIF, CubaLIF  # noqa: E402

PJ = 1e-6  # µJ per pJ
MAC, AC, WORD = 4.6, 0.9, 5.0  # Horowitz 45 nm fp32; a 32-bit access of an 8 KB SRAM (10 pJ per 64 bits)


def tiny_model(arch, dims, **model):
    cfg = from_dict(TrainConfig, {"arch": arch, "model": {
        "modalities": list(dims), "input_dims": dims, "n_classes": 3, "dim": 8, "classifier_hidden": 6,
        "fusion_layers": 1, "fusion_heads": 2, "dropout": 0.0,
        "core": {"dim": 8, "depth": 1, "mlp_ratio": 2, "T": 3, "norm_bias": 6.0}, **model}})
    torch.manual_seed(0)
    return build_model(cfg).eval(), cfg


def one_dialogue(dims, L=4):
    data = make_synthetic(seed=1, n_train=1, n_dev=1, n_test=1, dims=dims, min_len=L, max_len=L)
    return collate(data.split("train")[:1], list(dims))


def test_stream_whole_model_energy_is_hand_counted_from_recorded_spikes():
    dims = {"t": 5}
    model, cfg = tiny_model("stream", dims)
    batch = one_dialogue(dims)
    L, T, D, H, C, slots = 4, 3, 8, 16, 3, cfg.model.stream.max_speakers
    spikes = {}
    core = model.streams["t"]
    hooks = [m.register_forward_hook(lambda mod, a, out, n=n: spikes.__setitem__(n, out.detach()))
             for n, m in core.named_modules() if isinstance(m, (BoxLIF, CubaLIF))]
    cores, host = count_whole(model, [batch])
    for h in hooks:
        h.remove()
    s0 = spikes["encoder.lif"]
    q, k, v, c = (spikes[f"blocks.0.attn.{p}"] for p in ("q.lif", "k.lif", "v.lif", "context"))
    s1 = s0 + spikes["blocks.0.attn.proj.lif"]
    fc1 = spikes["blocks.0.fc1.lif"]
    s2 = s1 + spikes["blocks.0.fc2.lif"]
    assert s0.sum() > 0 and (k * v).sum() > 0 and fc1.sum() > 0  # the count below is not all zeros
    macs = L * (5 + slots + 1) * D  # the analog input layer, once per utterance
    weight_sops = float(3 * s0.sum() * D + (k * v).sum() * D + (q * c).sum() * D + s1.sum() * H
                        + fc1.sum() * D + s2.sum() * C)
    ands = float((k * v).sum() + (q * c).sum())
    updates = L * T * (D + 3 * D + 2 * D + D + H + D + C)  # enc, q/k/v, context (i and v), proj, fc1, fc2, LI
    whole = whole_per_utterance(cores, host)
    assert whole["macs"] == macs / L and whole["host_macs"] == 0
    assert whole["weight_sops"] == pytest.approx(weight_sops / L)
    assert whole["sops"] == pytest.approx((weight_sops + ands) / L)
    assert whole["neuron_updates"] == updates / L
    e = whole_energy(whole, T)
    compute = MAC * macs + AC * (weight_sops + ands) + (MAC + AC) * updates
    memory = WORD * (macs + weight_sops) + 2 * WORD * updates
    assert e["energy_uj_whole"] == pytest.approx(compute / L * PJ)
    assert e["energy_uj_whole_memory"] == pytest.approx((compute + memory) / L * PJ)
    # the ANN twin: every Synapse once per utterance, the two ANDs as D multiplications each
    ann_macs = L * ((5 + slots + 1) * D + 5 * D * D + 2 * D * H + C * D + 2 * D)
    activations = L * (D + 3 * D + D + D + H + D + C)
    assert whole["ann_macs"] == ann_macs / L and whole["ann_outputs"] == activations / L
    assert e["ann_energy_uj_whole_memory"] == pytest.approx(((MAC + WORD) * ann_macs + 2 * WORD * activations) / L * PJ)


@pytest.mark.parametrize("mlp_input", ["stream", "attention"])
def test_declared_fan_outs_times_spikes_are_the_counted_synaptic_ops(mlp_input):
    """The per-synapse budget's weights (``synapses_per_spike``) are the synapses the bench
    counts: exactly, for every population whose spikes reach synapses directly (two blocks: the
    residual stream's fan-out adds up over them), and an upper bound for an AND's inputs."""
    dims = {"t": 5}
    model, _ = tiny_model("stream", dims, core={"dim": 8, "depth": 2, "mlp_ratio": 2, "T": 3, "norm_bias": 6.0},
                          stream={"mlp_input": mlp_input})
    layers = count_whole(model, [one_dialogue(dims)])[0]["t"].layers
    populations = {n: m for n, m in model.streams["t"].named_modules() if isinstance(m, (BoxLIF, CubaLIF))}
    and_inputs = ("attn.q.lif", "attn.k.lif", "attn.v.lif", "attn.context")
    and_outputs = ("attn.context_synapse", "attn.proj.synapse")  # the synapses the ANDs feed

    def weighted(names):
        return sum(layers[n].spikes * populations[n].synapses_per_spike for n in names)

    direct = [n for n in populations if not n.endswith(and_inputs)]
    assert weighted(direct) == sum(c.sops for n, c in layers.items() if c.kind == "linear" and not n.endswith(and_outputs))
    assert all(layers[n].spikes > 0 for n in populations)  # every population's weight was tested
    via_ands = sum(c.sops for n, c in layers.items() if n.endswith(and_outputs))
    assert 0 < via_ands <= weighted(n for n in populations if n.endswith(and_inputs))


def test_spikemo_host_parts_are_hand_counted_from_layer_shapes():
    dims = {"t": 5, "a": 4}
    model, cfg = tiny_model("spikemo", dims, context="bigru")
    L, D, G, Hc, C = 4, 8, 4, 6, 3  # G: the BiGRU's hidden size (dim // 2)
    cores, host = count_whole(model, [one_dialogue(dims, L)])
    per_modality = (L * dims_in * D for dims_in in dims.values())
    gru = 2 * L * 3 * G * ((D + 9) + G) + L * 2 * G * D  # both directions' gates, then the projection
    readout = 3 * L * D  # DSWA's LayerNorm
    attention = 4 * L * D * D + 2 * L * L * D  # q, k, v, out projections; scores and weighted sum
    fusion = attention + 2 * 3 * L * D + 2 * L * D * 4 * D  # two Add&Norms, the FFN
    classifier = L * 2 * D * Hc + L * Hc * C
    host_macs = sum(per_modality) + 2 * (gru + readout + fusion) + classifier
    whole = whole_per_utterance(cores, host)
    assert whole["host_macs"] == pytest.approx(host_macs / L)
    e = whole_energy(whole, cfg.model.core.T)
    assert e["host_energy_uj_memory"] == pytest.approx(((MAC + WORD) * host_macs + 2 * WORD * whole["host_outputs"] * L) / L * PJ)
    core_only = MAC * whole["macs"] + AC * whole["sops"] + (MAC + AC) * whole["neuron_updates"]
    assert e["energy_uj_whole"] == pytest.approx((MAC * host_macs / L + core_only) * PJ)


def test_host_counter_refuses_padded_batches():
    dims = {"t": 5}
    model, _ = tiny_model("spikemo", dims, context="none")
    data = make_synthetic(seed=1, n_train=2, n_dev=1, n_test=1, dims=dims, min_len=2, max_len=6)
    batch = collate(data.split("train"), ["t"])
    assert not batch.mask.all()
    with pytest.raises(ValueError, match="batch size 1"), HostCounter(model), torch.no_grad():
        model(batch)


def test_whole_energy_arithmetic_for_ann_and_quantised_ann():
    w = {"host_macs": 100.0, "host_outputs": 10.0, "sops": 400.0, "weight_sops": 300.0, "macs": 20.0,
         "held_macs": 20.0, "ann_macs": 220.0, "ann_outputs": 30.0, "neuron_updates": 50.0}
    e = whole_energy(w, T=4)
    assert quantised_bits(4) == 3 and quantised_bits(1) == 1 and quantised_bits(7) == 3 and quantised_bits(8) == 4
    qmac = 3.1 * 3 / 32 + 0.9  # a 3-bit × 32-bit multiply (Horowitz: 3.1 pJ at 32 × 32) and an fp32 add
    assert qmac_pj(3) == pytest.approx(qmac)
    host = (MAC + WORD) * 100 + 2 * WORD * 10
    assert e["ann_energy_uj_whole_memory"] == pytest.approx((host + (MAC + WORD) * 220 + 2 * WORD * 30) * PJ)
    three_bit_access = 3 * 10 / 64
    assert e["qann_energy_uj_whole_memory"] == pytest.approx(
        (host + MAC * 20 + qmac * 200 + WORD * 220 + 2 * three_bit_access * 30) * PJ)
    assert e["energy_uj_whole_memory"] == pytest.approx(
        (host + MAC * 20 + AC * 400 + (MAC + AC) * 50 + WORD * (20 + 300) + 2 * WORD * 50) * PJ)


def test_text_encoder_energy_from_its_shape():
    minilm = ENCODERS["minilm"]
    n = 13.8
    macs = 6 * n * (4 * 384 * 384 + 2 * 384 * 1536 + 2 * n * 384)
    e = encoder_energy(minilm, n)
    assert e["encoder_macs_per_utterance"] == pytest.approx(macs)
    assert e["encoder_energy_uj"] == pytest.approx(MAC * macs * PJ)
    assert e["encoder_energy_uj_memory"] == pytest.approx((MAC + WORD) * macs * PJ)
