"""Text for text-to-video: a word tokenizer, a small transformer text encoder, and a tiny CLIP that scores how well
a prompt matches a clip.

    prompt ──Tokenizer──► ids (b, L), mask (b, L) ──TextEncoder──► tokens (b, L, width)  → the U-Net's cross-attention
                                                                └─► pooled (b, width)   → TinyCLIP's text embedding
    clip (b, 1, f, h, w) ──ClipVideoEncoder──► (b, video_dim)                          → TinyCLIP's video embedding

1. **Tokenizer** — one id per word of the caption grammar (``captions.WORDS``) plus four special tokens. A word
   it does not know is an error naming the word and the closest words it knows; it is never dropped silently.
2. **TextEncoder** — token embedding + learned positions, pre-norm transformer blocks (as GPT-2 and CLIP's text
   tower), a final LayerNorm. Bidirectional: every word reads every other real word; padding is never read.
3. **TinyCLIP** — a text encoder and a (2+1)-D video encoder trained so that a clip and its prompt land close
   together in one embedding space: the symmetric contrastive loss of CLIP (Radford et al. 2021). Trained, it
   answers "which of these prompts describes this clip?" (``zero_shot_accuracy``) and gives a prompt-clip score
   (``text_video_similarity``, the CLIP-SIM of text-to-video papers).

    tokenizer = Tokenizer()
    ids, mask = tokenizer.encode(["the digit 3 moves up and down"], max_len=20)   # (1, 20) each
    encoder = TextEncoder(TextEncoderConfig.cpu())
    tokens, pooled = encoder(ids, mask)                                           # (1, 20, 64), (1, 64)

Notebook 10 builds the tokenizer and one transformer block inline and checks them against this module.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .attention import attention, masked_mean
from .blocks import Downsample, FactorizedConv, FrameGroupNorm, SpatialConv, num_groups
from .captions import (DIRECTIONS, MOTIONS, STYLES, TRAIN_TEMPLATES, WORDS, Meaning, caption, describe_unknown,
                       join_words, parse_all, split_words)
from .optim import adamw_with_decay_groups, warmup_cosine_scheduler
from .utils import count_parameters, get_device

# ============================================================================= 1. the tokenizer

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)  # ids 0, 1, 2, 3
ON_UNKNOWN = ("raise", "unk")


class Tokenizer:
    """Words ↔ ids. ``vocab[i]`` is the word of id ``i``: the four specials, then ``words`` sorted.

    Rules: lower-case; a word is a run of letters or digits; each punctuation mark is a word of its own
    (``"3, going"`` → ``3 , going``). ``encode`` writes each prompt as ``<bos> w₁ … wₙ <eos>`` followed by
    ``<pad>`` up to ``max_len``, and a mask that is True on every real token (``<bos>`` and ``<eos>`` included).

    **The empty prompt** ("" or only spaces) is ``<bos> <eos>``: two real tokens, never all padding. It is the
    null condition of classifier-free guidance, and it must be *something* the text encoder turns into features
    that training (caption dropout) can give the meaning "no caption", like Stable Diffusion's embedding of "".
    All padding would instead make cross-attention read nothing at all (``attention.CrossAttention`` then adds
    exactly zero), and a mean over no tokens is 0/0.
    """

    def __init__(self, words: Iterable[str] = WORDS):
        words = sorted(set(words) - set(SPECIALS))
        self.vocab: list[str] = list(SPECIALS) + words
        self.index: dict[str, int] = {w: i for i, w in enumerate(self.vocab)}
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = (self.index[s] for s in SPECIALS)

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"Tokenizer({len(self)} tokens: {len(SPECIALS)} special + {len(self) - len(SPECIALS)} words)"

    def tokenize(self, prompt: str) -> list[str]:
        """``"The digit 3, moving"`` → ``["the", "digit", "3", ",", "moving"]`` (``captions.split_words``)."""
        return split_words(prompt)

    def encode(self, prompts: str | Sequence[str], max_len: int | None = None,
               on_unknown: str = "raise") -> tuple[Tensor, Tensor]:
        """Prompts → ``ids`` long ``(b, L)`` and ``mask`` bool ``(b, L)`` (True = a real token), ``L = max_len``
        (None: the longest prompt's length). A single string is a batch of one.

        ``on_unknown="raise"`` (default): a word outside the vocabulary is a ``ValueError`` naming every such word
        and its closest vocabulary words. ``"unk"``: such words become ``<unk>``, with a warning that names them
        (for training on noisy text). A prompt longer than ``max_len`` is an error, never cut.
        """
        # 1. words, and the words we do not know
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if not prompts:
            raise ValueError("encode needs at least one prompt; for the null condition pass [''] (the empty prompt)")
        if on_unknown not in ON_UNKNOWN:
            raise ValueError(f"on_unknown must be one of {ON_UNKNOWN}; got {on_unknown!r}")
        words = [self.tokenize(p) for p in prompts]
        unknown = [w for ws in words for w in ws if w not in self.index]
        if unknown and on_unknown == "raise":
            raise ValueError(f"the tokenizer does not know {describe_unknown(unknown, self.vocab[len(SPECIALS):])}. "
                             f"Its vocabulary is the caption grammar's {len(self) - len(SPECIALS)} words "
                             f"(captions.WORDS): rephrase with those, or pass on_unknown='unk' to map unknown "
                             f"words to <unk>")
        if unknown:
            warnings.warn(f"mapped {len(unknown)} unknown word(s) to <unk>: "
                          f"{describe_unknown(unknown, self.vocab[len(SPECIALS):])}", stacklevel=2)
        # 2. <bos> w₁ … wₙ <eos>
        rows = [[self.bos_id] + [self.index.get(w, self.unk_id) for w in ws] + [self.eos_id] for ws in words]
        longest = max(len(r) for r in rows)
        max_len = longest if max_len is None else max_len
        if max_len < longest:
            k = max(range(len(rows)), key=lambda i: len(rows[i]))
            raise ValueError(f"the prompt {prompts[k]!r} is {len(rows[k])} tokens with <bos> and <eos>, more than "
                             f"max_len={max_len}; raise max_len (TextEncoderConfig.max_len) or shorten the prompt")
        # 3. pad to max_len
        ids = torch.full((len(rows), max_len), self.pad_id, dtype=torch.long)  # (b, L)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
        return ids, ids != self.pad_id  # (b, L), (b, L)

    def decode(self, ids: Tensor | Sequence) -> str | list[str]:
        """ids ``(L,)`` → the prompt, ``(b, L)`` → a list of them: specials left out, ``<unk>`` kept, words joined
        as the grammar writes them (``join_words``), so ``decode(encode(c)[0])[0] == c`` for every grammar caption."""
        ids = torch.as_tensor(ids)
        if ids.ndim == 1:
            return self.decode(ids[None])[0]
        if ids.ndim != 2:
            raise ValueError(f"decode expects ids of shape (L,) or (b, L), got {tuple(ids.shape)}")
        out = []
        for row in ids.tolist():
            words = []
            for i in row:
                if not 0 <= i < len(self):
                    raise ValueError(f"id {i} is outside this tokenizer's vocabulary of {len(self)} tokens")
                if i == self.eos_id:
                    break
                if i not in (self.pad_id, self.bos_id):
                    words.append(self.vocab[i])
            out.append(join_words(words))
        return out


# ============================================================================= 2. the text encoder


@dataclass
class TextEncoderConfig:
    vocab_size: int | None = None  # tokens in the vocabulary; None = the caption grammar's (len(Tokenizer()))
    max_len: int = 20  # longest prompt in tokens, <bos> and <eos> included (one learned position each);
    #                    the grammar's longest one-digit caption is 16 words + 2 (captions.longest_caption)
    width: int = 64  # width of every token feature: the U-Net's context_dim
    num_layers: int = 2  # transformer blocks
    num_heads: int = 4  # attention heads; width must be a multiple of it
    mlp_mult: int = 4  # the MLP's hidden width is mlp_mult · width

    def __post_init__(self):
        if self.width % self.num_heads:
            raise ValueError(f"width={self.width} must be a multiple of num_heads={self.num_heads} "
                             f"(each head gets width / num_heads channels)")
        if self.max_len < 2:
            raise ValueError(f"max_len={self.max_len} leaves no room for <bos> and <eos>; use max_len >= 2")

    @classmethod
    def smoke(cls, **overrides) -> "TextEncoderConfig":
        """Tiny (15 k parameters): tests and CI; one-digit captions."""
        return cls(**{**dict(width=32, num_layers=1, num_heads=2, max_len=20), **overrides})

    @classmethod
    def cpu(cls, **overrides) -> "TextEncoderConfig":
        """One-digit captions on a laptop (0.10 M parameters)."""
        return cls(**{**dict(width=64, num_layers=2, num_heads=4, max_len=20), **overrides})

    @classmethod
    def gpu(cls, **overrides) -> "TextEncoderConfig":
        """Two-digit captions (up to 33 words + <bos>, <eos>) on a GPU (0.80 M parameters)."""
        return cls(**{**dict(width=128, num_layers=4, num_heads=4, max_len=40), **overrides})


class SelfAttention(nn.Module):
    """Multi-head self-attention over tokens with a key padding mask: no token reads a padding token.
    ``(b, L, d), mask (b, L) -> (b, L, d)``."""

    def __init__(self, width: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.to_qkv = nn.Linear(width, 3 * width)
        self.to_out = nn.Linear(width, width)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        q, k, v = rearrange(self.to_qkv(x), "b l (three heads d) -> three b heads l d", three=3, heads=self.num_heads)
        keys = rearrange(mask, "b l -> b 1 1 l")  # every query (and head) may read the real keys only
        out = attention(q, k, v, attn_mask=keys)  # (b, heads, L, d)
        return self.to_out(rearrange(out, "b heads l d -> b l (heads d)"))  # (b, L, width)


class TransformerBlock(nn.Module):
    """Pre-norm, as GPT-2 (Radford et al. 2019): ``x + attn(LN(x))``, then ``x + MLP(LN(x))``.
    ``(b, L, d) -> (b, L, d)``."""

    def __init__(self, width: int, num_heads: int, mlp_mult: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, num_heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_mult * width), nn.GELU(), nn.Linear(mlp_mult * width, width))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x), mask)  # (b, L, width)
        return x + self.mlp(self.norm2(x))  # (b, L, width)


class TextEncoder(nn.Module):
    """ids ``(b, L)``, mask ``(b, L)`` → ``(tokens (b, L, width), pooled (b, width))``.

    ``tokens`` are what the U-Net's cross-attention reads (with the same mask); ``pooled`` is one vector per
    prompt, for TinyCLIP. Pooling is the **mean over the real tokens**: the encoder is bidirectional, so every
    token has read the whole prompt and none is special. (CLIP's text tower is causal, so only its last token,
    ``<eos>``, has seen every word; that is why CLIP takes the ``<eos>`` feature.)

    Padding changes nothing: the real tokens never read the padding, and positions count from ``<bos>``, so a
    prompt padded to 8 or to 16 tokens gets the same features on its real tokens (tested).
    """

    def __init__(self, cfg: TextEncoderConfig | None = None, verbose: bool = False):
        super().__init__()
        cfg = cfg or TextEncoderConfig()
        if cfg.vocab_size is None:
            cfg = replace(cfg, vocab_size=len(Tokenizer()))
        self.cfg = cfg
        self.token_embed = nn.Embedding(cfg.vocab_size, cfg.width)
        self.pos_embed = nn.Parameter(torch.randn(cfg.max_len, cfg.width) * 0.02)  # one learned vector per position
        self.blocks = nn.ModuleList([TransformerBlock(cfg.width, cfg.num_heads, cfg.mlp_mult)
                                     for _ in range(cfg.num_layers)])
        self.norm = nn.LayerNorm(cfg.width)
        nn.init.normal_(self.token_embed.weight, std=0.02)
        if verbose:
            print(f"TextEncoder: {count_parameters(self) / 1e6:.2f} M parameters")

    def forward(self, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        self._check(ids, mask)
        b, L = ids.shape
        # 1. what each token is, and where it is
        x = self.token_embed(ids) + self.pos_embed[:L]  # (b, L, width)
        # 2. the blocks; padding is never read
        for blk in self.blocks:
            x = blk(x, mask)  # (b, L, width)
        tokens = self.norm(x)  # (b, L, width)
        # 3. one vector per prompt
        return tokens, masked_mean(tokens, mask)  # (b, L, width), (b, width)

    def _check(self, ids: Tensor, mask: Tensor) -> None:
        if ids.ndim != 2 or mask.shape != ids.shape:
            raise ValueError(f"TextEncoder expects ids and mask of one shape (b, L); got {tuple(ids.shape)} and "
                             f"{tuple(mask.shape)}. Tokenizer.encode(prompts, max_len) gives both")
        if ids.shape[1] > self.cfg.max_len:
            raise ValueError(f"ids have L={ids.shape[1]} tokens but the encoder has max_len={self.cfg.max_len} "
                             f"positions; encode with max_len <= {self.cfg.max_len} or use a larger TextEncoderConfig")
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.cfg.vocab_size):
            raise ValueError(f"ids must lie in [0, vocab_size={self.cfg.vocab_size}); got {ids.min()} … {ids.max()}: "
                             f"was the tokenizer built with other words than this encoder?")
        empty = (~mask.bool()).all(dim=1)
        if empty.any():
            raise ValueError(f"rows {empty.nonzero().flatten().tolist()} are all padding; the empty prompt is "
                             f"[<bos>, <eos>], as Tokenizer.encode('') writes it")


# ============================================================================= 3. a tiny CLIP


class ClipVideoEncoder(nn.Module):
    """A small (2+1)-D convolutional encoder of pixel clips: ``(b, 1, f, h, w) -> (b, out_dim)``.

    Each level halves h and w (a stride-2 3×3 convolution per frame), then mixes space and time with a 1×3×3
    spatial and a 3×1×1 temporal convolution (R(2+1)D, Tran et al. 2018), GroupNorm and SiLU; halving first keeps
    the convolutions off the full-resolution frames, where they would cost 4× more. Each feature then keeps its
    strongest response over h and w (a max: the digit covers a few of the positions, and a mean over all of them
    would dilute it in background; with the mean the tiny CLIP trained far slower, see docs/text.md), but
    **not** over frames: ``(b, c, f) -> (b, c·f) -> Linear``, so the embedding knows which frame came first, and
    a digit moving up differs from one moving down.
    """

    def __init__(self, channels: Sequence[int] = (16, 32), num_frames: int = 8, out_dim: int = 128,
                 norm_groups: int = 8):
        super().__init__()
        self.num_frames = num_frames
        self.stem = SpatialConv(1, channels[0])
        levels, c_in = [], channels[0]
        for c in channels:
            levels += [Downsample(c_in), FactorizedConv(c_in, c), FrameGroupNorm(num_groups(c, norm_groups), c),
                       nn.SiLU()]
            c_in = c
        self.levels = nn.Sequential(*levels)
        self.head = nn.Linear(c_in * num_frames, out_dim)

    def forward(self, clips: Tensor) -> Tensor:
        if clips.ndim != 5 or clips.shape[1] != 1 or clips.shape[2] != self.num_frames:
            raise ValueError(f"ClipVideoEncoder expects pixel clips (b, 1, f={self.num_frames}, h, w) in [-1, 1], got "
                             f"{tuple(clips.shape)}; add a channel axis with clips[:, None], or build it with "
                             f"num_frames={clips.shape[2] if clips.ndim == 5 else '...'}")
        h = self.levels(self.stem(clips))  # (b, c, f, h / 2^levels, w / 2^levels)
        h = h.amax(dim=(3, 4))  # (b, c, f): where in the frame is forgotten, when is kept
        return self.head(rearrange(h, "b c f -> b (c f)"))  # (b, out_dim)


@dataclass
class TinyClipConfig:
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig.cpu)  # the text tower
    video_channels: tuple[int, ...] = (16, 32)  # widths of the video encoder's levels (each halves h and w)
    num_frames: int = 8  # frames per clip (the video embedding keeps their order)
    video_dim: int = 128  # the video encoder's output width
    embed_dim: int = 64  # width of the shared embedding space
    init_temperature: float = 0.07  # CLIP's: the logit scale starts at ln(1 / 0.07)
    lr: float = 2e-3  # peak learning rate (AdamW)
    weight_decay: float = 0.01  # on weight matrices only (optim.adamw_with_decay_groups)
    warmup: int = 10  # warm-up steps, then cosine to 0.1 × lr
    batch_size: int = 64  # clip-prompt pairs per step: each sees batch_size − 1 negatives

    def __post_init__(self):
        self.video_channels = tuple(self.video_channels)

    @classmethod
    def smoke(cls, **overrides) -> "TinyClipConfig":
        return cls(**{**dict(text=TextEncoderConfig.smoke(), video_channels=(8, 16), video_dim=32, embed_dim=32,
                             batch_size=16), **overrides})

    @classmethod
    def cpu(cls, **overrides) -> "TinyClipConfig":
        return cls(**overrides)

    @classmethod
    def gpu(cls, **overrides) -> "TinyClipConfig":
        return cls(**{**dict(text=TextEncoderConfig.gpu(), video_channels=(32, 64, 128), num_frames=20,
                             video_dim=256, embed_dim=128, lr=1e-3, batch_size=256), **overrides})


MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clips the learned logit scale so that logits are scaled by at most 100


def clip_loss(text_emb: Tensor, video_emb: Tensor, logit_scale: Tensor | float,
              targets: Tensor | None = None) -> Tensor:
    """The symmetric contrastive (InfoNCE) loss of CLIP (Radford et al. 2021, Figure 3):

        t, v = normalise(text_emb), normalise(video_emb)           each (n, e), unit rows
        logits = exp(min(logit_scale, ln 100)) · v tᵀ              (n, n): logits[i, j] = clip i vs prompt j
        loss = ½ · (CE(logits, targets) + CE(logitsᵀ, targetsᵀ))   clips pick their prompt, prompts their clip

    ``targets`` (n, n) says which pairs match; None = the diagonal (pair i is clip i with prompt i), CLIP's
    ``labels = np.arange(n)``. Give a matrix when several prompts in a batch say the same thing: each row is
    normalised to sum to 1, and cross-entropy with those soft targets counts every match as a positive.
    """
    t = F.normalize(text_emb, dim=-1)  # (n, e)
    v = F.normalize(video_emb, dim=-1)  # (n, e)
    scale = torch.as_tensor(logit_scale, dtype=v.dtype, device=v.device).clamp(max=MAX_LOGIT_SCALE).exp()
    logits = scale * v @ t.T  # (n, n): clip i against prompt j
    if targets is None:
        labels = torch.arange(len(v), device=v.device)  # (n,)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    targets = targets.to(logits.dtype)
    rows = targets / targets.sum(dim=1, keepdim=True)  # (n, n): each clip's matching prompts
    cols = targets.T / targets.T.sum(dim=1, keepdim=True)  # (n, n): each prompt's matching clips
    return 0.5 * (F.cross_entropy(logits, rows) + F.cross_entropy(logits.T, cols))


class TinyCLIP(nn.Module):
    """A text encoder, a video encoder, a linear projection of each into one space, and the learned temperature.

    ``encode_text(prompts)`` and ``encode_video(clips)`` give unit vectors ``(n, embed_dim)``; their dot product
    is the cosine similarity of a prompt and a clip.
    """

    def __init__(self, cfg: TinyClipConfig | None = None, tokenizer: Tokenizer | None = None, verbose: bool = False):
        super().__init__()
        cfg = cfg or TinyClipConfig()
        self.tokenizer = tokenizer or Tokenizer()
        if cfg.text.vocab_size is None:
            cfg = replace(cfg, text=replace(cfg.text, vocab_size=len(self.tokenizer)))
        if cfg.text.vocab_size != len(self.tokenizer):
            raise ValueError(f"the text encoder's vocab_size={cfg.text.vocab_size} differs from the tokenizer's "
                             f"{len(self.tokenizer)} tokens; leave TextEncoderConfig.vocab_size=None")
        self.cfg = cfg
        self.text_encoder = TextEncoder(cfg.text)
        self.video_encoder = ClipVideoEncoder(cfg.video_channels, cfg.num_frames, cfg.video_dim)
        self.text_proj = nn.Linear(cfg.text.width, cfg.embed_dim, bias=False)
        self.video_proj = nn.Linear(cfg.video_dim, cfg.embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / cfg.init_temperature)))  # CLIP's init
        if verbose:
            print(f"TinyCLIP: {count_parameters(self) / 1e6:.2f} M parameters")

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def encode_ids(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Token ids → unit text embeddings ``(n, embed_dim)``."""
        _, pooled = self.text_encoder(ids.to(self.device), mask.to(self.device))  # (n, width)
        return F.normalize(self.text_proj(pooled), dim=-1)  # (n, embed_dim)

    def encode_text(self, prompts: str | Sequence[str]) -> Tensor:
        """Prompts → unit text embeddings ``(n, embed_dim)``."""
        ids, mask = self.tokenizer.encode(prompts, self.cfg.text.max_len)  # (n, L) each
        return self.encode_ids(ids, mask)

    def encode_video(self, clips: Tensor) -> Tensor:
        """Pixel clips ``(n, 1, f, h, w)`` in [-1, 1] → unit video embeddings ``(n, embed_dim)``."""
        return F.normalize(self.video_proj(self.video_encoder(clips.to(self.device))), dim=-1)  # (n, embed_dim)

    def forward(self, clips: Tensor, ids: Tensor, mask: Tensor, targets: Tensor | None = None) -> Tensor:
        """The contrastive loss of a batch of clip-prompt pairs."""
        return clip_loss(self.encode_ids(ids, mask), self.encode_video(clips), self.logit_scale, targets)


def meaning_groups(prompts: Sequence[str]) -> Tensor:
    """One id per prompt: prompts that mean the same (``captions.parse_all``) share an id; a prompt outside the
    grammar is its own meaning, shared only with the same words. ``(n,)`` long."""
    keys = []
    for p in prompts:
        try:
            keys.append(("meaning", parse_all(p)))
        except ValueError:
            keys.append(("words", tuple(split_words(p))))
    ids = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    return torch.tensor([ids[k] for k in keys], dtype=torch.long)


def train_tiny_clip(clips: Tensor, prompts: Sequence[str], cfg: TinyClipConfig | None = None, steps: int = 200,
                    groups: Tensor | None = None, model: TinyCLIP | None = None,
                    device: torch.device | str | None = None, seed: int = 0,
                    log_every: int = 0) -> tuple[TinyCLIP, dict[str, list[float]]]:
    """Train a TinyCLIP on ``clips (n, 1, f, h, w)`` and their ``prompts`` (n strings) for ``steps`` steps.

    Every step draws ``cfg.batch_size`` pairs without replacement. Pairs whose ``groups`` ids are equal count as
    matches of each other (None: ``meaning_groups(prompts)``, so two clips of "the digit 3 moves up and down" are
    not each other's negatives). Returns the model and its history: ``{"loss": [...], "temperature": [...]}``.
    """
    cfg = cfg or TinyClipConfig()
    if len(clips) != len(prompts):
        raise ValueError(f"train_tiny_clip needs one prompt per clip; got {len(clips)} clips, {len(prompts)} prompts")
    if len(clips) < 2:
        raise ValueError("a contrastive loss needs at least 2 clip-prompt pairs (each is the other's negative)")
    # 1. the device, once; the model; all prompts tokenised once
    device = torch.device(device) if device is not None else get_device()
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = (model or TinyCLIP(cfg)).to(device).train()
    ids, mask = model.tokenizer.encode(list(prompts), model.cfg.text.max_len)  # (n, L) each
    groups = meaning_groups(prompts) if groups is None else torch.as_tensor(groups).long()
    # 2. AdamW with warm-up and cosine decay (optim.py)
    optimizer = adamw_with_decay_groups(model, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = warmup_cosine_scheduler(optimizer, warmup=cfg.warmup, total=steps)
    history: dict[str, list[float]] = {"loss": [], "temperature": []}
    batch = min(cfg.batch_size, len(clips))
    for step in range(steps):
        # 3. a batch of pairs, and which of them match
        idx = torch.randperm(len(clips), generator=g)[:batch]  # (b,)
        targets = (groups[idx, None] == groups[None, idx]).float().to(device)  # (b, b), 1 on the diagonal
        # 4. the contrastive loss, a step
        loss = model(clips[idx].to(device), ids[idx], mask[idx], targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        history["loss"].append(loss.item())
        history["temperature"].append(1 / model.logit_scale.detach().clamp(max=MAX_LOGIT_SCALE).exp().item())
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"step {step:4d}  loss {history['loss'][-1]:.3f}  temperature {history['temperature'][-1]:.3f}")
    return model.eval(), history


# ============================================================================= 4. using a trained CLIP


@torch.no_grad()
def similarity_matrix(clip_model, clips: Tensor, prompts: Sequence[str], batch_size: int = 256) -> Tensor:
    """Cosine similarity of every clip with every prompt: ``(n_clips, n_prompts)`` in [-1, 1]. ``clip_model``
    is anything with ``encode_video`` and ``encode_text`` returning unit vectors (a ``TinyCLIP``)."""
    text = clip_model.encode_text(list(prompts))  # (k, e)
    video = torch.cat([clip_model.encode_video(clips[i:i + batch_size])
                       for i in range(0, len(clips), batch_size)])  # (n, e)
    return video @ text.to(video.device).T  # (n, k)


def zero_shot_accuracy(clip_model, clips: Tensor, candidate_prompts: Sequence[str], true_index) -> float:
    """How often the prompt most similar to a clip is its true one: clip i's answer is
    ``argmax_j sim(clip i, candidate_prompts[j])``, right when it equals ``true_index[i]``. Chance is
    1 / len(candidate_prompts)."""
    true_index = torch.as_tensor(np.asarray(true_index)).long().reshape(-1)  # (n,)
    if len(true_index) != len(clips):
        raise ValueError(f"need one true_index per clip; got {len(true_index)} for {len(clips)} clips")
    if true_index.numel() and not 0 <= int(true_index.min()) <= int(true_index.max()) < len(candidate_prompts):
        raise ValueError(f"true_index must index candidate_prompts (0 … {len(candidate_prompts) - 1}); "
                         f"got {int(true_index.min())} … {int(true_index.max())}")
    answer = similarity_matrix(clip_model, clips, candidate_prompts).argmax(dim=1).cpu()  # (n,)
    return (answer == true_index).float().mean().item()


ATTRIBUTE_VALUES = {"digit": tuple(range(10)), "motion": MOTIONS, "direction": DIRECTIONS, "style": STYLES}


def zero_shot_by_attribute(clip_model, clips: Tensor, meanings: Sequence[Meaning],
                           template: str = TRAIN_TEMPLATES[0]) -> dict[str, float]:
    """``zero_shot_accuracy`` for each attribute of the clips' ``meanings`` (one ``Meaning`` per clip): one candidate
    prompt per value of the attribute (``ATTRIBUTE_VALUES``: 10 digits, 3 motions, 8 directions, 3 styles), said
    with ``template`` and naming nothing else — except the clip's own digit, for the attributes other than the
    digit ("the digit 8 moves left and right" against "... up and down"). Chance is 1 / len(values)."""
    if len(meanings) != len(clips):
        raise ValueError(f"need one Meaning per clip; got {len(meanings)} for {len(clips)} clips")
    out = {}
    for attr, values in ATTRIBUTE_VALUES.items():
        right = 0
        digits = [None] if attr == "digit" else sorted({m.digit for m in meanings})
        for digit in digits:  # the clips that share their candidate prompts
            idx = [i for i, m in enumerate(meanings) if attr == "digit" or m.digit == digit]
            base = {} if attr == "digit" else {"digit": digit}
            candidates = [caption(Meaning(**base, **{attr: v}), template) for v in values]
            truth = [values.index(getattr(meanings[i], attr)) for i in idx]
            right += round(zero_shot_accuracy(clip_model, clips[idx], candidates, truth) * len(idx))  # clips right
        out[attr] = right / len(meanings)
    return out


@torch.no_grad()
def text_video_similarity(clip_model, clips: Tensor, prompts: Sequence[str], batch_size: int = 256) -> Tensor:
    """The cosine similarity of clip i with prompt i, ``(n,)`` in [-1, 1]: our analogue of the CLIPSIM that
    text-to-video papers report (e.g. NÜWA, Wu et al. 2021; Make-A-Video, Singer et al. 2022), the mean similarity
    of generated clips to their prompts under a CLIP model (they use OpenAI's, per frame; ours sees whole clips)."""
    if len(clips) != len(prompts):
        raise ValueError(f"text_video_similarity pairs clip i with prompt i; got {len(clips)} clips, "
                         f"{len(prompts)} prompts")
    sims = []
    for i in range(0, len(clips), batch_size):
        video = clip_model.encode_video(clips[i:i + batch_size])  # (b, e)
        text = clip_model.encode_text(list(prompts[i:i + batch_size])).to(video.device)  # (b, e)
        sims.append((video * text).sum(dim=1))  # (b,)
    return torch.cat(sims)  # (n,)
