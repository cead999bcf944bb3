"""Does the text encoder tell the words apart? How much a text model's pooled prompt feature moves when one part
of the caption changes (issue 10: the cpu-text model ignores its motion and direction words).

    python benchmarks/probe_text_words.py --weights cpu-text runs/ablate_text_noisy-steps

For each kind of change, 10 caption pairs per template pair (one per digit) that differ only in it; printed is the
mean of ‖p(a) − p(b)‖ / mean(‖p(a)‖, ‖p(b)‖) over the pairs, p the encoder's pooled feature (what joins the
timestep embedding), and the same for the token features at the positions whose words differ (what
cross-attention reads there). Pairs whose changed words shift the later positions (a style word added) have no
aligned position and get no token column.
"""

from __future__ import annotations

import argparse

import torch

from vdiff_edu.pipeline import LatentVideoPipeline

BASE = "the digit {d} moves left and right, heading right"
PAIRS = {  # kind of change → (caption, the same caption with that one thing changed), {d} a digit, {e} another
    "direction reversed": [(BASE, "the digit {d} moves left and right, heading left"),
                           ("the digit {d} moves up and down, heading up", "the digit {d} moves up and down, heading down")],
    "motion changed": [(BASE, "the digit {d} moves up and down, heading up")],
    "digit changed": [(BASE, "the digit {e} moves left and right, heading right")],
    "style changed": [(BASE, "the bold digit {d} moves left and right, heading right")],
}


def features(pipe: LatentVideoPipeline, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The token ids ``(n, L)``, token features ``(n, L, width)`` and pooled features ``(n, width)`` of ``prompts``."""
    kind = pipe.conditioning.kinds[0]  # CaptionIds: its tokenizer and length
    ids, mask = kind.tokenizer.encode(prompts, kind.max_len)  # (n, L) each
    with torch.no_grad():
        tokens, pooled = pipe.unet.text_encoder.eval()(ids, mask)  # (n, L, width), (n, width)
    return ids, tokens, pooled


def relative(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """‖a − b‖ / mean(‖a‖, ‖b‖) over the last axis."""
    return (a - b).norm(dim=-1) / ((a.norm(dim=-1) + b.norm(dim=-1)) / 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", nargs="+", default=["cpu-text"])
    args = p.parse_args()
    print("| weights | feature | " + " | ".join(PAIRS) + " |")
    print("|---|---|" + "---:|" * len(PAIRS))
    for weights in args.weights:
        pipe = LatentVideoPipeline.from_pretrained(weights, device="cpu")
        pooled_cells, token_cells = [], []
        for pairs in PAIRS.values():
            a = [x.format(d=d, e=(d + 3) % 10) for x, _ in pairs for d in range(10)]
            b = [y.format(d=d, e=(d + 3) % 10) for _, y in pairs for d in range(10)]
            (ids_a, tok_a, pool_a), (ids_b, tok_b, pool_b) = features(pipe, a), features(pipe, b)
            pooled_cells.append(f"{relative(pool_a, pool_b).mean():.3f}")
            aligned = bool(((ids_a == 0) == (ids_b == 0)).all())  # same length: the changed words share positions
            differ = (ids_a != ids_b) & aligned  # (n, L) the positions whose words were changed
            token_cells.append(f"{relative(tok_a, tok_b)[differ].mean():.3f}" if differ.any() else "—")
        print(f"| {weights} | pooled | " + " | ".join(pooled_cells) + " |")
        print(f"| {weights} | tokens at the changed words | " + " | ".join(token_cells) + " |")


if __name__ == "__main__":
    main()
