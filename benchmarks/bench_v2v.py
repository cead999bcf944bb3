"""Benchmark of video to video (issue 11): the structure–content trade-off of a structure-conditioned model.

    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_v2v.py --weights runs/cpu-v2v --n 200 --out runs/bench_v2v
    ... --levels 2 --omegas 0,1,2,3      # temporal-consistency guidance ω_t at level 2
    ... --content prompt,image           # also the content from a reference digit image ("this 8")

``--n`` input clips of the fixed evaluation split (test digits, never seen in training). Each is edited with a prompt
that names another digit than the input's and a random stroke ("the bold digit 8"), at every level of detail from
0 (no structure: text to video) to the finest (the exact silhouette). Per level (``eval.edits.edit_scores``):

    centre px    mean distance between the tracked centres of output and input, per frame (0 = moves exactly so)
    close        share of edits whose mean centre distance is at most 1.5 px
    digit, style faithfulness to the prompt (digit reader; stroke width)
    leak         share of edits whose output the digit reader reads as the input's digit
    flicker      motion-compensated change between frames (``metrics.flicker``; real clips ≈ 0)
    FVD-MM       Fréchet distance of the video encoder's features to another ``n`` real clips of the evaluation
                 split (``metrics.frechet_distance``; the "input itself" row is real against real, the floor)

and two rows that bracket them: the input clips themselves scored against the same prompts (structure kept exactly,
content never changed), and real clips of the requested digit and stroke (what the readers confirm at best, and
their centres against the inputs': an unrelated path). ``--text-weights cpu-text`` adds a row for a text-to-video
model given the same prompts (no structure), for its FVD-MM and faithfulness beside the edits'.

``--content image`` (for a model trained with references, ``pipe.reads_references``) edits the same inputs with
the same requests given as a **reference image** instead of a prompt: the first frame of the "real clip of the
request" (a test digit of the requested digit and stroke, never an input), centred. Its rows are "level L, image",
scored against the same requests. Prints a Markdown table, writes ``results.json`` and a figure (one input, its
maps and the edit at every level) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import torch  # noqa: E402

from vdiff_edu import captions, viz  # noqa: E402
from vdiff_edu.eval.edits import edit_scores  # noqa: E402
from vdiff_edu.eval.feature_nets import load_feature_nets  # noqa: E402
from vdiff_edu.eval.metrics import flicker, frechet_distance  # noqa: E402
from vdiff_edu.eval.prompts import calibrate_style_cuts  # noqa: E402
from vdiff_edu.moving_mnist import MovingMNIST  # noqa: E402
from vdiff_edu.pipeline import LatentVideoPipeline  # noqa: E402
from vdiff_edu.reference import reference_of_clips  # noqa: E402
from vdiff_edu.structure import cell_size, finest_level, structure_image  # noqa: E402
from vdiff_edu.utils import from_uint8, to_uint8  # noqa: E402


def real_clips(cfg, n: int, start: int, keep=lambda m: True) -> tuple[np.ndarray, list[captions.Meaning]]:
    """``n`` clips of the evaluation split from index ``start`` whose meaning passes ``keep``: uint8 (n, f, h, w)."""
    kwargs = cfg.dataset_kwargs()
    kwargs.pop("holdout", None)
    ds = MovingMNIST(split="eval", length=start + 50 * n, seed=0, verbose=False, **kwargs)
    clips, meanings = [], []
    for i in range(start, len(ds)):
        item = ds[i]
        m = captions.meanings_of_item(item)[0]
        if keep(m):
            clips.append(to_uint8(item["video"][0]).numpy())
            meanings.append(m)
            if len(clips) == n:
                break
    return np.stack(clips), meanings


def requests(meanings: list[captions.Meaning], seed: int = 0) -> list[captions.Meaning]:
    """For each input, new content: another digit than its own and a random stroke."""
    rng = np.random.default_rng(seed)
    out = []
    for m in meanings:
        digit = int(rng.choice([d for d in range(10) if d != m.digit]))
        out.append(captions.Meaning(digit, style=captions.STYLES[rng.integers(len(captions.STYLES))]))
    return out


def measure(pipe, n: int, levels=None, guidance: float | None = None, sampler: str | None = None,
            steps: int | None = None, batch: int = 50, omegas=(), omega_level: int = 2,
            text_pipe=None, contents=("prompt",)) -> tuple[dict, dict]:
    cfg = pipe.config
    nets = load_feature_nets()
    reference, _ = real_clips(cfg, n, 60_000)  # real clips that are neither inputs nor requests: FVD-MM's reference
    ref_features = nets.video_features(reference)

    def fvd_mm(clips: np.ndarray) -> float:  # uint8 (n, f, h, w) against the reference
        return frechet_distance(nets.video_features(clips), ref_features)

    cal_clips, cal_meanings = real_clips(cfg, 300, 20_000)
    cuts = calibrate_style_cuts(cal_clips, [m.style for m in cal_meanings])
    inputs, meanings = real_clips(cfg, n, 0)
    asked = requests(meanings)
    rng = np.random.default_rng(1)
    templates = captions.TRAIN_TEMPLATES
    prompts = [captions.caption(m, templates[rng.integers(len(templates))]) for m in asked]
    input_digits = [m.digit for m in meanings]
    video_in = from_uint8(torch.from_numpy(inputs))[:, None]  # (n, 1, f, h, w) in [-1, 1]
    top = finest_level(cfg.image_size)
    levels = list(range(top + 1)) if levels is None else list(levels)

    # the requested content, drawn from real clips (one per request, matched by digit and stroke)
    pool_clips, pool_meanings = real_clips(cfg, 40 * n if n < 100 else 4000, 40_000)
    by_content: dict = {}
    for clip, m in zip(pool_clips, pool_meanings):
        by_content.setdefault((m.digit, m.style), []).append(clip)
    wanted = np.stack([by_content[(m.digit, m.style)][i % len(by_content[(m.digit, m.style)])]
                       for i, m in enumerate(asked)])

    results = {"style_cuts": cuts, "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
               f"torch {torch.__version__}", "n": n, "prompts": prompts[:8], "rows": {}}
    results["rows"]["input itself"] = {**edit_scores(inputs, inputs, prompts, input_digits, nets, cuts),
                                       "flicker": flicker(inputs), "fvd_mm": fvd_mm(inputs)}
    results["rows"]["real clip of the request"] = {**edit_scores(wanted, inputs, prompts, input_digits, nets, cuts),
                                                   "flicker": flicker(wanted), "fvd_mm": fvd_mm(wanted)}
    if text_pipe is not None:  # text to video with the same prompts, no structure: where the edits' FVD-MM sits
        made = to_uint8(text_pipe(prompts=prompts, sampler=sampler, steps=steps, seed=1, batch_size=batch)[:, 0]).numpy()
        results["rows"]["text to video (no input)"] = {**edit_scores(made, inputs, prompts, input_digits, nets, cuts),
                                                       "flicker": flicker(made), "fvd_mm": fvd_mm(made)}
    shown = {"input": inputs[0], "prompt": prompts[0], "maps": {}, "edits": {}}
    references = reference_of_clips(from_uint8(torch.from_numpy(wanted))[:, None])  # (n, 1, h, w): "this 8"
    for content in contents:
        given = dict(prompts=prompts) if content == "prompt" else dict(references=references)
        for level in levels:
            start = time.perf_counter()
            video = pipe.edit(video_in, detail=level, sampler=sampler, steps=steps, guidance_scale=guidance, seed=1,
                              batch_size=batch, **given)  # (n, 1, f, h, w)
            seconds = time.perf_counter() - start
            made = to_uint8(video[:, 0]).numpy()
            row = {**edit_scores(made, inputs, prompts, input_digits, nets, cuts), "flicker": flicker(made),
                   "fvd_mm": fvd_mm(made), "cell px": cell_size(level, cfg.image_size) if level else None,
                   "seconds per clip": seconds / n}
            name = f"level {level}" + ("" if content == "prompt" else f", {content}")
            results["rows"][name] = row
            shown["maps"][level] = structure_image(video_in[:1], level, cfg.structure.pooling)[0].numpy()
            shown["edits"].setdefault(content, {})[level] = made[0]
            print(f"{name}: {seconds / n:.3f} s per clip; " + ", ".join(
                f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float)), flush=True)
    shown["reference"] = to_uint8(references[0, 0]).numpy()
    for omega in omegas:  # temporal-consistency guidance at one level of detail
        start = time.perf_counter()
        video = pipe.edit(video_in, prompts=prompts, detail=omega_level, sampler=sampler, steps=steps,
                          guidance_scale=guidance, temporal_guidance=omega, seed=1, batch_size=batch)
        seconds = time.perf_counter() - start
        made = to_uint8(video[:, 0]).numpy()
        row = {**edit_scores(made, inputs, prompts, input_digits, nets, cuts), "flicker": flicker(made),
               "fvd_mm": fvd_mm(made), "seconds per clip": seconds / n}
        results.setdefault("temporal guidance", {"level": omega_level, "rows": {}})["rows"][f"{omega:g}"] = row
        print(f"ω_t {omega:g} (level {omega_level}): {seconds / n:.3f} s per clip; " + ", ".join(
            f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float)), flush=True)
    return results, shown


def table(results: dict) -> str:
    cols = ("centre_px", "close", "digit", "style", "leak", "flicker", "fvd_mm")
    lines = ["| clips | cells | " + " | ".join(cols) + " |", "|---|---|" + "---:|" * len(cols)]
    for name, r in results["rows"].items():
        cells = (f"{r['cell px']} px" if r.get("cell px") else "none") if name.startswith("level") else ""
        lines.append(f"| {name} | {cells} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |")
    if "temporal guidance" in results:
        tg = results["temporal guidance"]
        lines += ["", f"temporal-consistency guidance at level {tg['level']}:", "",
                  "| ω_t | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
        for omega, r in tg["rows"].items():
            lines.append(f"| {omega} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |")
    return "\n".join(lines)


def figure(shown: dict, path: Path) -> None:
    """One input, then its map and its edit at every level (for each kind of content measured): a
    ``viz.filmstrip`` of uint8 clips; a reference image is shown as a still row."""
    levels = sorted(shown["maps"])
    contents = list(shown["edits"])
    rows, labels = [shown["input"]], ["input"]
    if "image" in contents:
        rows.append(np.repeat(shown["reference"][None], len(shown["input"]), axis=0))
        labels.append("reference image")
    for level in levels:
        rows.append(shown["maps"][level])
        labels.append(f"level {level}: map")
        for content in contents:
            rows.append(shown["edits"][content][level])
            labels.append(f"level {level}: edit" + ("" if content == "prompt" else f" ({content})"))
    title = " · ".join([f"prompt: {shown['prompt']!r}"] * ("prompt" in contents) + ["image: the row above"] *
                       ("image" in contents))
    fig = viz.filmstrip(np.stack(rows), labels=labels, title=title, frames=len(rows[0]))
    fig.savefig(path, dpi=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="runs/cpu-v2v", help="a video-to-video run folder or shipped name")
    ap.add_argument("--n", type=int, default=200, help="input clips (one edit each, per level)")
    ap.add_argument("--levels", default=None, help="comma-separated levels of detail (default: all, 0 to finest)")
    ap.add_argument("--guidance", type=float, default=None, help="guidance scale of the prompt (default: the run's)")
    ap.add_argument("--omegas", default="", help="comma-separated temporal-consistency scales ω_t to measure too "
                                                "(e.g. 0,1,2,3; default: none)")
    ap.add_argument("--omega-level", type=int, default=2, help="the level of detail of the ω_t rows (default 2)")
    ap.add_argument("--text-weights", default=None, help="a text-to-video model (e.g. cpu-text) for a row beside the edits")
    ap.add_argument("--content", default="prompt", help="comma-separated: prompt (the requests as prompts; default) "
                                                        "and/or image (as reference images, \"this 8\")")
    ap.add_argument("--sampler", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default="runs/bench_v2v")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = LatentVideoPipeline.from_pretrained(args.weights)
    if not pipe.reads_structure:
        raise SystemExit(f"{args.weights} reads no structure; give a video-to-video run (--preset cpu-v2v)")
    levels = None if args.levels is None else [int(v) for v in args.levels.split(",")]
    omegas = [float(v) for v in args.omegas.split(",") if v.strip()]
    text_pipe = LatentVideoPipeline.from_pretrained(args.text_weights) if args.text_weights else None
    contents = [c.strip() for c in args.content.split(",") if c.strip()]
    if not contents or set(contents) - {"prompt", "image"}:
        raise SystemExit(f"--content takes prompt and/or image, comma-separated; got {args.content!r}")
    if "image" in contents and not pipe.reads_references:
        raise SystemExit(f"{args.weights} takes its content from prompts only; --content image needs a model "
                         f"trained with reference images (--preset cpu-v2v, now)")
    results, shown = measure(pipe, args.n, levels, args.guidance, args.sampler, args.steps, args.batch, omegas,
                             args.omega_level, text_pipe, contents)
    results["weights"] = str(args.weights)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\n{args.weights}, {args.n} edits per row; {results['machine']}\n")
    print(table(results))
    figure(shown, out / "edits.png")
    print(f"\nwrote {out / 'results.json'} and {out / 'edits.png'}")


if __name__ == "__main__":
    main()
