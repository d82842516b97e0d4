"""Conversational context encoders: each utterance's features → features that know the dialogue.

Every encoder maps ``x [L, B, D]`` (utterance-first, zeros at padding), ``mask [L, B]`` (bool,
True at real utterances, a prefix of each column) and ``speakers [L, B]`` (speaker index within
the dialogue) to ``[L, B, D]``, zero at padding. Padding never influences a real utterance.

Kinds (``build_context_encoder``):

- ``"bigru"`` — speaker-aware bidirectional GRU (the plain baseline of RESEARCH §2).
- ``"dialoguernn"`` — bidirectional DialogueRNN (Majumder et al., AAAI 2019), the context model
  of MultiEMO and SpikEmo.
- ``"none"`` — identity.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..data.types import DataError
from ..errors import ConfigError

CONTEXT_KINDS = ("dialoguernn", "bigru", "none")


def dialogue_lengths(mask: torch.Tensor) -> torch.Tensor:
    """Lengths ``[B]`` of the dialogues in ``mask [L, B]``; raises if a column is not a prefix of Trues."""
    if mask.dim() != 2 or mask.dtype != torch.bool:
        raise DataError(f"mask must be a bool tensor [L, B]; got {mask.dtype} of shape {tuple(mask.shape)}")
    lengths = mask.sum(0)
    prefix = torch.arange(mask.shape[0], device=mask.device)[:, None] < lengths[None, :]
    if not torch.equal(prefix, mask):
        bad = (prefix != mask).any(0).nonzero().flatten().tolist()
        raise DataError(f"mask columns {bad} are not a prefix of real utterances followed by padding")
    return lengths


def reverse_dialogues(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``lengths[b]`` steps of each column of ``x [L, B, ...]``; padding stays put.

    An involution: applying it twice gives ``x`` back.
    """
    L, B = x.shape[:2]
    t = torch.arange(L, device=x.device)[:, None].expand(L, B)
    n = lengths.to(x.device)[None, :]
    index = torch.where(t < n, n - 1 - t, t)
    index = index.reshape(L, B, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, index)


def _check_inputs(x: torch.Tensor, mask: torch.Tensor, speakers: torch.Tensor, dim: int) -> torch.Tensor:
    if x.dim() != 3 or x.shape[-1] != dim:
        raise DataError(f"context encoder expects x [L, B, {dim}]; got shape {tuple(x.shape)}")
    if mask.shape != x.shape[:2] or speakers.shape != x.shape[:2]:
        raise DataError(
            f"mask {tuple(mask.shape)} and speakers {tuple(speakers.shape)} must both be [L, B] = {tuple(x.shape[:2])}"
        )
    if speakers.numel() and int(speakers.min()) < 0:
        raise DataError("speaker indices must be ≥ 0")
    return dialogue_lengths(mask)


class IdentityContext(nn.Module):
    """No context: returns ``x`` (zeroed at padding)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor, speakers: torch.Tensor) -> torch.Tensor:
        _check_inputs(x, mask, speakers, self.dim)
        return x * mask[..., None]


class SpeakerBiGRU(nn.Module):
    """Speaker-aware bidirectional GRU over the utterances of each dialogue.

    ``h = BiGRU([x_t ; onehot(s_t)])``, ``y_t = W · dropout(h_t) + b`` with ``h_t ∈ R^{2H}``,
    ``y ∈ R^D``. The speaker one-hot has ``max_speakers`` slots; speakers beyond the last slot
    share it ("other speaker"); nine slots cover every MELD dialogue. A one-hot into the GRU's
    input weights is a learned per-speaker bias of every gate, i.e. a learned speaker embedding.
    Dialogues are packed, so neither direction reads padding.
    """

    def __init__(self, dim: int, dropout: float, hidden: int | None = None, max_speakers: int = 9):
        super().__init__()
        self.dim, self.max_speakers = dim, max_speakers
        hidden = hidden or max(dim // 2, 1)
        self.gru = nn.GRU(dim + max_speakers, hidden, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(2 * hidden, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, speakers: torch.Tensor) -> torch.Tensor:
        lengths = _check_inputs(x, mask, speakers, self.dim)
        onehot = nn.functional.one_hot(speakers.clamp(max=self.max_speakers - 1), self.max_speakers)
        inputs = torch.cat([x, onehot.to(x.dtype)], dim=-1)
        # an all-padding column (length 0) cannot be packed: let it read one step, masked out below
        packed = pack_padded_sequence(inputs, lengths.clamp(min=1).cpu(), enforce_sorted=False)
        h, _ = pad_packed_sequence(self.gru(packed)[0], total_length=x.shape[0])
        return self.proj(self.dropout(h)) * mask[..., None]


class DialogueRNN(nn.Module):
    """DialogueRNN (Majumder et al., AAAI 2019): global, party and emotion GRUs over a dialogue.

    At utterance ``t`` with speaker ``s = s_t`` and features ``u_t``, states ``g`` (global),
    ``q_p`` (one per party ``p``) and ``e`` (emotion), all of size ``D``:

    - global:    ``g_t = GRU_G([u_t ; q_{s,t-1}], g_{t-1})``
    - attention: ``α = softmax_j(u_tᵀ W_α g_j)`` over the previous states ``j < t`` (paper eq. 2),
      ``c_t = Σ_j α_j g_j`` (zero at ``t = 0``)
    - speaker:   ``q_{s,t} = GRU_P([u_t ; c_t], q_{s,t-1})``
    - listeners: unchanged (``q_{p,t} = q_{p,t-1}``, the paper's default), or with
      ``listener_state=True`` ``q_{p,t} = GRU_L([u_t ; q_{s,t}], q_{p,t-1})`` (the original code's
      option)
    - emotion:   ``e_t = GRU_E(q_{s,t}, e_{t-1})``

    All states start at zero. Padded steps update nothing and the attention reads only real
    previous states. With ``bidirectional=True`` a second, independent DialogueRNN runs over each
    dialogue reversed (padding left in place) and its outputs are reversed back ("BiDialogueRNN");
    the output is ``W · dropout([e_fwd ; e_bwd]) + b`` (or ``W · dropout(e_fwd) + b``).
    The loop over utterances is in Python, each step batched over the B dialogues; party states
    are gathered/scattered for the current speaker only.
    """

    def __init__(self, dim: int, dropout: float, bidirectional: bool = True, listener_state: bool = False):
        super().__init__()
        self.dim = dim
        self.directions = nn.ModuleList(
            _DialogueRNNPass(dim, listener_state) for _ in range(2 if bidirectional else 1)
        )
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(len(self.directions) * dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, speakers: torch.Tensor) -> torch.Tensor:
        lengths = _check_inputs(x, mask, speakers, self.dim)
        outs = [self.directions[0](x, mask, speakers)]
        if len(self.directions) == 2:
            rev = self.directions[1](reverse_dialogues(x, lengths), mask, reverse_dialogues(speakers, lengths))
            outs.append(reverse_dialogues(rev, lengths))
        return self.proj(self.dropout(torch.cat(outs, dim=-1))) * mask[..., None]


class _DialogueRNNPass(nn.Module):
    """One causal (left-to-right) DialogueRNN pass; returns the emotion states ``[L, B, D]``."""

    def __init__(self, dim: int, listener_state: bool):
        super().__init__()
        self.global_cell = nn.GRUCell(2 * dim, dim)
        self.party_cell = nn.GRUCell(2 * dim, dim)
        self.listener_cell = nn.GRUCell(2 * dim, dim) if listener_state else None
        self.emotion_cell = nn.GRUCell(dim, dim)
        self.attn = nn.Linear(dim, dim, bias=False)  # attn(u) = W_αᵀ u

    def forward(self, x: torch.Tensor, mask: torch.Tensor, speakers: torch.Tensor) -> torch.Tensor:
        L, B, D = x.shape
        n_parties = int(speakers.max()) + 1 if speakers.numel() else 1
        g = x.new_zeros(B, D)
        e = x.new_zeros(B, D)
        parties = x.new_zeros(B, n_parties, D)
        queries = self.attn(x)  # [L, B, D]: W_αᵀ u_t for every t at once
        history: list[torch.Tensor] = []  # previous global states, each [B, D]
        outputs = []
        for t in range(L):
            u = x[t]
            spk = speakers[t][:, None, None].expand(B, 1, D)
            q_speaker = parties.gather(1, spk).squeeze(1)
            g_new = self.global_cell(torch.cat([u, q_speaker], -1), g)
            c = self._context(queries[t], history, mask[:t])
            q_new = self.party_cell(torch.cat([u, c], -1), q_speaker)
            if self.listener_cell is None:
                parties_new = parties.scatter(1, spk, q_new[:, None])
            else:
                listener_in = torch.cat([u, q_new], -1)[:, None].expand(B, n_parties, 2 * D)
                listened = self.listener_cell(listener_in.reshape(-1, 2 * D), parties.reshape(-1, D))
                parties_new = listened.view(B, n_parties, D).scatter(1, spk, q_new[:, None])
            e_new = self.emotion_cell(q_new, e)
            real = mask[t][:, None]  # padded dialogues keep their states
            g = torch.where(real, g_new, g)
            e = torch.where(real, e_new, e)
            parties = torch.where(real[:, :, None], parties_new, parties)
            history.append(g)
            outputs.append(e)
        return torch.stack(outputs) * mask[..., None]

    @staticmethod
    def _context(query: torch.Tensor, history: list[torch.Tensor], past_mask: torch.Tensor) -> torch.Tensor:
        """Attention pool of the previous global states (zeros when there are none); ``query = W_αᵀ u_t``."""
        if not history:
            return torch.zeros_like(query)
        G = torch.stack(history, dim=1)  # [B, t, D]
        scores = torch.bmm(G, query[:, :, None]).squeeze(-1)  # [B, t]: u_tᵀ W_α g_j
        past = past_mask.T
        scores = scores.masked_fill(~past, float("-inf"))
        # a dialogue whose past is all padding (it ended earlier) gets uniform weights; its step is
        # itself padding and discarded, but this keeps softmax free of NaNs
        scores = torch.where(past.any(1, keepdim=True), scores, torch.zeros_like(scores))
        alpha = torch.softmax(scores, dim=1)
        return torch.bmm(alpha[:, None], G).squeeze(1)


def build_context_encoder(kind: str, dim: int, dropout: float) -> nn.Module:
    """The context encoder named ``kind`` (one of ``CONTEXT_KINDS``) for ``dim``-wide features."""
    if kind == "dialoguernn":
        return DialogueRNN(dim, dropout, bidirectional=True)
    if kind == "bigru":
        return SpeakerBiGRU(dim, dropout)
    if kind == "none":
        return IdentityContext(dim)
    raise ConfigError(f"unknown context encoder {kind!r}; expected one of {list(CONTEXT_KINDS)}")
