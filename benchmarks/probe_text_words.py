"""Does the text encoder tell the words apart? How much a text model's pooled prompt feature moves when one part
of the caption changes (issue 10: the cpu-text model ignores its motion and direction words).

    python benchmarks/probe_text_words.py --weights cpu-text runs/ablate_text_noisy-steps

For each kind of change, 10 caption pairs per template pair (one per digit) that differ only in it; printed is the
mean of ‖p(a) − p(b)‖ / mean(‖p(a)‖, ‖p(b)‖) over the pairs, p the encoder's pooled feature (what joins the
timestep embedding; cross-attention reads the token features, not measured here).
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


def pooled(pipe: LatentVideoPipeline, prompts: list[str]) -> torch.Tensor:
    """The text encoder's pooled features ``(n, width)`` of ``prompts``."""
    kind = pipe.conditioning.kinds[0]  # CaptionIds: its tokenizer and length
    ids, mask = kind.tokenizer.encode(prompts, kind.max_len)  # (n, L) each
    with torch.no_grad():
        return pipe.unet.text_encoder.eval()(ids, mask)[1]  # (n, width)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", nargs="+", default=["cpu-text"])
    args = p.parse_args()
    print("| weights | " + " | ".join(PAIRS) + " |")
    print("|---|" + "---:|" * len(PAIRS))
    for weights in args.weights:
        pipe = LatentVideoPipeline.from_pretrained(weights, device="cpu")
        cells = []
        for pairs in PAIRS.values():
            a = [x.format(d=d, e=(d + 3) % 10) for x, _ in pairs for d in range(10)]
            b = [y.format(d=d, e=(d + 3) % 10) for _, y in pairs for d in range(10)]
            fa, fb = pooled(pipe, a), pooled(pipe, b)  # (n, width) each
            cells.append(f"{((fa - fb).norm(dim=1) / ((fa.norm(dim=1) + fb.norm(dim=1)) / 2)).mean():.3f}")
        print(f"| {weights} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
