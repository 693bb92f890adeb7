#!/usr/bin/env bash
# One command for a GPU machine (about 8 minutes on one H100): installs what it needs, runs the
# CUDA tests (pytest -m cuda) and the GPU sections of bench_retrieval.py (full-ranking
# evaluation), bench_images.py (CNN features from JPEGs) and bench_train.py (bf16 training), and
# prints one table: stage, figure, value, goal. Logs go to $GPU_CHECK_DIR (outputs/gpu_check).
# Without CUDA it stops after the install and the CPU checks with one line and exit code 2.
#
#   bash scripts/gpu_check.sh
#
# Sizes (environment): GPU_CHECK_EVAL_USERS/ITEMS (100000/100000), GPU_CHECK_IMAGES (3072),
# GPU_CHECK_TRAIN_USERS/ITEMS (20000/5000: the synthetic world is generated on the CPU; the goal's
# 1M x 100k world takes longer than this check: bench_train.py --users 1000000 --items 100000).
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
BIN=$VENV/bin
LOGS=${GPU_CHECK_DIR:-outputs/gpu_check}
mkdir -p "$LOGS"

die() { echo "gpu_check: $*" >&2; exit 2; }

# 1. install: a venv with the package and its dev extra (reusing the machine's site packages,
#    e.g. a preinstalled torch), unless one already imports recsys, torch and pytest
if ! "$BIN/python" -c "import recsys, torch, pytest" >/dev/null 2>&1; then
    echo "gpu_check: installing into $VENV (log: $LOGS/install.log)"
    { "$PYTHON" -m venv --system-site-packages "$VENV" \
        && "$BIN/pip" install -e '.[dev]'; } >"$LOGS/install.log" 2>&1 \
        || die "install failed (pip install -e '.[dev]' into $VENV); see $LOGS/install.log"
fi

# 2. CPU part: the device checks that need no GPU (bad trainer devices, Dockerfile lint)
"$BIN/python" -m pytest -q -p no:cacheprovider tests/unit/test_devices.py \
    tests/integration/test_dockerfile.py >"$LOGS/cpu_tests.log" 2>&1 \
    || die "CPU checks failed; see $LOGS/cpu_tests.log"
echo "gpu_check: CPU checks passed ($(tail -n 1 "$LOGS/cpu_tests.log"))"

"$BIN/python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || die "no CUDA device visible to torch $("$BIN/python" -c 'import torch; print(torch.__version__)') on this machine: CPU part done, CUDA tests and GPU benchmarks not run"

# 3. GPU stages, each under its own time limit (seconds), output kept in $LOGS/<stage>.log
stage() {
    local name=$1 limit=$2
    shift 2
    echo "gpu_check: $name (at most ${limit}s)"
    timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1
    echo $? >"$LOGS/$name.rc"
}
stage cuda_tests 200 "$BIN/python" -m pytest -q -p no:cacheprovider -m cuda
stage eval 60 "$BIN/python" scripts/bench_retrieval.py --only-device-eval --eval-device cuda \
    --eval-users "${GPU_CHECK_EVAL_USERS:-100000}" --eval-items "${GPU_CHECK_EVAL_ITEMS:-100000}"
stage images 110 "$BIN/python" scripts/bench_images.py --only-gpu --synthetic "${GPU_CHECK_IMAGES:-3072}"
stage train 150 "$BIN/python" scripts/bench_train.py --skip-cpu --users "${GPU_CHECK_TRAIN_USERS:-20000}" \
    --items "${GPU_CHECK_TRAIN_ITEMS:-5000}" --cuda-epochs 3

# 4. one table from the logs
"$BIN/python" - "$LOGS" <<'PY'
import re
import sys
from pathlib import Path

logs = Path(sys.argv[1])


def read(stage: str) -> tuple[str, str]:
    rc = (logs / f"{stage}.rc").read_text().strip()
    return (logs / f"{stage}.log").read_text(errors="replace"), rc


def find(text: str, pattern: str) -> str | None:
    m = re.search(pattern, text)
    return m.group(1) if m else None


def status(rc: str) -> str:
    return {"0": "", "124": " (timed out)"}.get(rc, f" (exit {rc})")


# (stage, log, figure, regex of the value, goal)
FIGURES = [
    ("evaluation", "eval", "full ranking on the GPU, s", r"device eval seconds \(ours\): ([\d.]+)s",
     "< 10 (100k x 100k)"),
    ("evaluation", "eval", "time ours / plain topk", r"ratio ours / reference time: ([\d.]+)", "report"),
    ("images", "images", "efficientnet_lite0 pipeline, images/s",
     r"efficientnet_lite0\s+raw forward.*pipeline\s+([\d.]+)", ">= 5000"),
    ("images", "images", "efficientnet_lite0 nvJPEG pipeline, images/s",
     r"efficientnet_lite0 nvJPEG pipeline\s+([\d.]+)", ">= 5000 (jpeg_decode=cuda)"),
    ("images", "images", "resnet50 pipeline, images/s", r"resnet50\s+raw forward.*pipeline\s+([\d.]+)",
     "report"),
    ("training", "train", "bf16 samples/s (Lightning)", r"recsys Lightning system \(ours\)\s+([\d,]+)",
     ">= 1,000,000 (1M x 100k world)"),
    ("training", "train", "Lightning / hand-written", r"ratio ours / hand-written: ([\d.]+);", ">= 0.9"),
    ("training", "train", "GPU utilisation, %", r"utilisation during our run: (\d+)%", "report"),
]
text, rc = read("cuda_tests")
runs = re.findall(r"^=*\s*(\d+ (?:passed|failed|error|skipped|deselected)[^=\n]* in [\d.]+s)", text, re.M)
rows = [("CUDA tests", "pytest -m cuda", (runs[-1] if runs else "no summary") + status(rc), "all pass")]
for stage, log, figure, pattern, goal in FIGURES:
    text, rc = read(log)
    rows.append((stage, figure, (find(text, pattern) or "-") + status(rc), goal))
widths = [max(len(str(r[i])) for r in [("stage", "figure", "value", "goal"), *rows]) for i in range(4)]
for r in [("stage", "figure", "value", "goal"), *rows]:
    print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
PY
