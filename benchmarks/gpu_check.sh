#!/usr/bin/env bash
# The prepared GPU check of vdiff-edu: one script for the day a GPU is lent (count on ~15 minutes of GPU time in
# all; this script ends in under 10). Run it from the repository root:
#
#     OUT=/some/folder bash benchmarks/gpu_check.sh          # on the GPU machine ($OUT defaults to ./gpu_check_out)
#     VDIFF_SMOKE=1 OUT=/tmp/gc bash benchmarks/gpu_check.sh # anywhere: every step at smoke size, to check the script
#
# What it measures, each step's output in $OUT:
#   0. env.txt          the machine: nvidia-smi, python, torch and CUDA versions
#   1. tests.txt        the unit tests on this machine (CUDA-only tests included; the notebooks are left to CI)
#   2. bench_gpu.json   the gpu preset's denoiser training step: clips/s, model FLOPs utilisation against the
#                       card's measured bf16 matmul rate and its datasheet peak, peak memory; eager and under
#                       torch.compile (benchmarks/bench_gpu.py); the autoencoder's frames/s
#   3. train.txt        the gpu preset trained from nothing for a fixed budget (VDIFF_GPU_MINUTES, default 3):
#                       what the budget chose, the losses, its samples (samples.npy / .gif / labels.npy)
#   4. evaluation.md    the evaluation suite on 200 of its clips, beside real-vs-real and broken baselines;
#      samples.gif      some of them
# $OUT keeps to these 8 files (what the device tool brings back); the run folder and the clips stay in $WORK.
# It uses the machine's own python3 and packages (nothing is installed); digits come from VDIFF_MNIST_DIR when set
# (carry the MNIST files), else the synthetic fallback, which every output then says.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg VDIFF_OFFLINE=1
WORK="${WORK:-/tmp/vdiff_gpu_check}"
mkdir -p "$WORK"
export VDIFF_RUNS_DIR="$WORK/runs"
MINUTES="${VDIFF_GPU_MINUTES:-3}"
SMOKE="${VDIFF_SMOKE:-0}"
status=0
step() { echo "== $1 ($(date +%H:%M:%S))"; }

step "0. environment"
{ nvidia-smi || echo "no nvidia-smi"; "$PY" -c "import torch, sys; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

step "1. unit tests"
[ -n "${GPU_CHECK_SKIP_TESTS:-}" ] && echo "skipped (GPU_CHECK_SKIP_TESTS)" > "$OUT/tests.txt" || timeout 240 "$PY" -m pytest -q -x tests -p no:cacheprovider -m "not slow" > "$OUT/tests.txt" 2>&1 || { status=1; echo "tests FAILED (see tests.txt)"; }
tail -3 "$OUT/tests.txt"

step "2. throughput, MFU, memory"
timeout 240 "$PY" benchmarks/bench_gpu.py --out "$OUT" ${GPU_CHECK_NO_COMPILE:+--no-compile} || { status=1; echo "bench_gpu FAILED"; }

step "3. train the gpu preset for $MINUTES min"
if [ "$SMOKE" = "1" ]; then PRESET=(--preset smoke); else PRESET=(--preset gpu --minutes "$MINUTES"); fi
timeout $(( ${MINUTES%.*} * 60 + 150 )) "$PY" -m vdiff_edu train "${PRESET[@]}" --name gpu_check > "$OUT/train.txt" 2>&1 || { status=1; echo "train FAILED (see train.txt)"; }
tail -12 "$OUT/train.txt"

step "4. sample 200 clips and evaluate them"
N=200; [ "$SMOKE" = "1" ] && N=8
timeout 120 "$PY" -m vdiff_edu sample --weights "$VDIFF_RUNS_DIR/gpu_check" --n "$N" --out "$WORK/samples" --overwrite > "$OUT/evaluate.txt" 2>&1 || { status=1; echo "sample FAILED"; }
timeout 150 "$PY" -m vdiff_edu evaluate "$WORK/samples" --out "$WORK/samples" >> "$OUT/evaluate.txt" 2>&1 || { status=1; echo "evaluate FAILED"; }
tail -14 "$OUT/evaluate.txt"
cp "$WORK/samples/evaluation.md" "$WORK/samples/samples.gif" "$OUT/" 2>/dev/null || true

step "done (status $status); outputs in $OUT"
exit $status
