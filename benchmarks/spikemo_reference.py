"""The SpikEmo reference spiking module, re-created for speed comparisons only (SpikingJelly).

Not part of the library: it needs ``spikingjelly==0.0.0.0.14`` (``pip install
spikingjelly==0.0.0.0.14``; not a project dependency). As in the public SpikEmo code (see
``../shared/RESEARCH.md`` §3), per modality:

    s = Θ(F ≥ 0) repeated over T            (the step function on the input)
    2 × Spikformer block, over the utterances of each dialogue, no padding mask:
        Q, K, V = LIF(LayerNorm(Linear(s)));  x = (Q Kᵀ) V · 0.125 per head (no softmax)
        x = LIF_{v_th=0.5}(x);  x = LIF(LayerNorm(Linear(x)));  s = s + x
        s = s + LIF(LN(Linear_{1024→256}(LIF(LN(Linear_{256→1024}(s))))))
    E = mean_T(LayerNorm(s));  W = softmax over utterances;  F + F ⊙ W

LIF: SpikingJelly ``LIFNode(tau=10, decay_input=True, v_reset=0, ATan)``, multi-step, torch
backend (the reference's CPU path).
"""
from __future__ import annotations

import torch
from spikingjelly.activation_based import functional, neuron, surrogate
from torch import nn


def _lif(v_th: float = 1.0) -> nn.Module:
    return neuron.LIFNode(tau=10.0, decay_input=True, v_threshold=v_th, v_reset=0.0,
                          surrogate_function=surrogate.ATan(), step_mode="m", backend="torch")


class _LinearLNLIF(nn.Module):
    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.linear, self.norm, self.lif = nn.Linear(d_in, d_out), nn.LayerNorm(d_out), _lif()

    def forward(self, x):  # [T, B, N, C]
        return self.lif(self.norm(self.linear(x)))


class _SSA(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, 0.125
        self.q, self.k, self.v = _LinearLNLIF(dim, dim), _LinearLNLIF(dim, dim), _LinearLNLIF(dim, dim)
        self.attn_lif = _lif(0.5)
        self.proj = _LinearLNLIF(dim, dim)

    def forward(self, x):
        T, B, N, C = x.shape

        def heads(t):
            return t.reshape(T, B, N, self.heads, C // self.heads).permute(0, 1, 3, 2, 4).contiguous()

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        y = (q @ k.transpose(-2, -1)) @ v * self.scale
        y = y.transpose(2, 3).reshape(T, B, N, C).contiguous()
        return self.proj(self.attn_lif(y))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.attn = _SSA(dim, heads)
        self.mlp = nn.Sequential(_LinearLNLIF(dim, hidden), _LinearLNLIF(hidden, dim))

    def forward(self, x):
        x = x + self.attn(x)
        return x + self.mlp(x)


class SpikEmoReference(nn.Module):
    """``forward(F [L, B, D]) -> F + F ⊙ softmax_L(mean_T(LN(blocks(Θ(F ≥ 0)))))``."""

    def __init__(self, dim: int = 256, heads: int = 8, depth: int = 2, T: int = 32):
        super().__init__()
        self.T = T
        self.blocks = nn.Sequential(*[_Block(dim, heads, 4 * dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        functional.reset_net(self)
        x = (features.transpose(0, 1) >= 0).to(features.dtype)  # [B, L, D]
        s = self.blocks(x.unsqueeze(0).repeat(self.T, 1, 1, 1))  # [T, B, L, D]
        weights = torch.softmax(self.norm(s).mean(0), dim=1).transpose(0, 1)  # [L, B, D]
        return features + features * weights
