"""The command line of the evaluation: ``python -m vdiff_edu evaluate`` (also ``python -m vdiff_edu.eval.cli``).

    python -m vdiff_edu evaluate runs/my_run                   score runs/my_run/samples.npy (and labels.npy)
    python -m vdiff_edu evaluate --train-feature-nets          retrain the feature networks (the cpu preset)

``add_evaluate_arguments`` adds the arguments to a parser, ``evaluate_command`` runs them; ``vdiff_edu.__main__``
uses both for its ``evaluate`` sub-command.
"""

from __future__ import annotations

import argparse

from ..config import is_smoke, runs_dir
from .feature_nets import FeatureNetConfig
from .metrics import evaluate_clips
from .report import format_table
from .training import train_feature_nets


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``python -m vdiff_edu evaluate``."""
    parser.add_argument("clips", nargs="?", help="samples.npy (uint8 (n, f, h, w)) or a run folder holding it")
    parser.add_argument("--labels", help="labels.npy (int64 (n, num_digits)): the digits each clip was asked for")
    parser.add_argument("--out", help="folder for evaluation.md / evaluation.json (default: beside the clips)")
    parser.add_argument("--rule", default="deterministic", choices=("deterministic", "stochastic"),
                        help="the bouncing rule of the real data")
    parser.add_argument("--n-ref", type=int, default=None, help="real reference clips (default max(n, 256))")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--targets", help="true clips (uint8 (n, f, h, w)) for prediction metrics")
    parser.add_argument("--context-frames", type=int, default=0, help="frames given to the model (not scored)")
    parser.add_argument("--weights-dir", help="folder of the feature networks (default: the shipped ones)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when available)")
    parser.add_argument("--mnist-dir", default=None,
                        help="folder with MNIST idx files for the real clips (default: VDIFF_MNIST_DIR, cache)")
    parser.add_argument("--train-feature-nets", action="store_true",
                        help="train the feature networks from scratch (reproducibly) and save them to --weights-dir "
                             "(default: the package's weights/ for the cpu preset, runs/feature_nets_<preset>/ otherwise)")
    parser.add_argument("--feature-preset", default=None, choices=("smoke", "cpu", "gpu"),
                        help="FeatureNetConfig preset for --train-feature-nets (default: smoke under VDIFF_SMOKE=1, else cpu)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for --train-feature-nets (the shipped nets used 1; results depend on it)")
    return parser


def evaluate_command(args: argparse.Namespace) -> int:
    """Run ``python -m vdiff_edu evaluate`` with parsed ``args``; returns an exit status."""
    if args.train_feature_nets:
        preset = args.feature_preset or ("smoke" if is_smoke() else "cpu")
        # only the cpu preset (what ships) replaces the package's weights by default
        out = args.weights_dir or (None if preset == "cpu" else runs_dir() / f"feature_nets_{preset}")
        train_feature_nets(getattr(FeatureNetConfig, preset)(), out_dir=out, device=args.device,
                           mnist_dir=args.mnist_dir, num_threads=args.threads)
        if not args.clips:
            return 0
    if not args.clips:
        raise SystemExit("evaluate needs clips: `python -m vdiff_edu evaluate runs/<name>` or a samples.npy "
                         "(or --train-feature-nets to retrain the feature networks)")
    if args.n_ref is not None and args.n_ref < 2:
        raise ValueError(f"--n-ref must be at least 2 (a covariance needs two clips; 256 is the default); got {args.n_ref}")
    if args.context_frames < 0:
        raise ValueError(f"--context-frames must be >= 0 (the frames the model was given); got {args.context_frames}")
    if not 0 <= args.seed < 2**63:
        raise ValueError(f"--seed must be between 0 and 2**63 - 1; got {args.seed}")
    reference = {"mnist_dir": args.mnist_dir} if args.mnist_dir else None
    result = evaluate_clips(args.clips, labels=args.labels, rule=args.rule, reference=reference, n_ref=args.n_ref,
                            seed=args.seed,
                            out_dir=args.out, targets=args.targets, context_frames=args.context_frames,
                            weights_dir=args.weights_dir, device=args.device)
    print(format_table(result))
    return 0


def main(argv=None) -> int:
    parser = add_evaluate_arguments(argparse.ArgumentParser(prog="python -m vdiff_edu.eval.cli",
                                                            description="Evaluate generated Moving MNIST clips"))
    return evaluate_command(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
