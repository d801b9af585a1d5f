#!/usr/bin/env bash
# GPU correctness on one CUDA GPU, in under 5 minutes (`make gpu-check`). The test suite stays CPU-only;
# this checks what only a GPU can break:
#   1. the CUDA-marked tests (pytest -m cuda: bf16 steps, CPU agreement, checkpoints, composer run on cuda)
#   2. a 1-process NCCL run through torchrun (NCCL refuses CPU tensors even at world size 1), and with two GPUs
#      an FSDP run stopped mid-epoch and resumed over NCCL (tests/test_fsdp_resume.py -m cuda)
#   3. every paper spec (specs/papers/*.yaml) at tiny size for a few steps in bf16, in parallel
#   4. the step-time / peak-memory benchmark rows (overhead.py, plan.py) on CUDA, and the input pipeline's
#      clips/s before and after issue 12 (pipeline.py: colour augmentation on the GPU, pinned batches)
#   5. the memory bill `composer build --batch-size` predicts against max_memory_allocated (memory_check.py)
# Each part has its own time limit; everything is tee'd into $OUT/gpu-check.log, and the summary table
# (part, status, seconds) goes to $OUT/summary.md, ready to paste into benchmarks/RESULTS.md.
#
#   PY=/usr/bin/python3 benchmarks/gpu_check.sh   another Python with the requirements (default .venv/bin/python)
#   GPU_CHECK_OUT=DIR                              where the log and results go (default benchmarks/gpu-check;
#                                                  the demo set and run directories go to a temporary folder)
#   GPU_CHECK_DRY_RUN=1                            no GPU needed: print every command instead of running it
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
OUT=${GPU_CHECK_OUT:-benchmarks/gpu-check}
DRY=${GPU_CHECK_DRY_RUN:-0}
# time limits in seconds; they add up to 5 minutes, 6.5 with two GPUs (the paper specs run side by side, so one
# limit covers them)
LIMIT_DEMO=20 LIMIT_PYTEST=50 LIMIT_NCCL=35 LIMIT_PAPER=70 LIMIT_OVERHEAD=30 LIMIT_PLAN=35 LIMIT_PIPELINE=30
LIMIT_MEMORY=30 LIMIT_FSDP=90  # FSDP: only on a machine with two GPUs
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

mkdir -p "$OUT"
LOG=$OUT/gpu-check.log
SUMMARY=$OUT/summary.md
WORK=$(mktemp -d -t gpu-check.XXXXXX)  # the demo set and the run directories: scratch, not results
trap 'rm -rf "$WORK"' EXIT
DEMO=$WORK/demo
PART_LOG=$OUT/last-part.log  # the output of the part that ran last
: > "$LOG"
ROWS=()
FAILED=0

say() { echo "$*" | tee -a "$LOG"; }

if [ "$DRY" = 1 ]; then
  say "GPU_CHECK_DRY_RUN=1: printing the commands, running none of them"
else
  command -v nvidia-smi > /dev/null || { echo "gpu_check: nvidia-smi not found: this script needs a CUDA GPU" \
    "(GPU_CHECK_DRY_RUN=1 prints what it would run)" >&2; exit 2; }
  [ -x "$PY" ] || command -v "$PY" > /dev/null || { echo "gpu_check: no Python at $PY: run make setup, or" \
    "give one with PY=/path/to/python" >&2; exit 2; }
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || { echo "gpu_check: torch" \
    "($PY) sees no CUDA GPU" >&2; exit 2; }
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$LOG"
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
    | tee -a "$LOG"
fi

# part NAME LIMIT COMMAND...: run COMMAND under `timeout`, log it under a header, record a summary row
part() {
  local name=$1 limit=$2 start rc status
  shift 2
  say ""
  say "== $name (limit ${limit}s): $(printf '%q ' "$@")"
  if [ "$DRY" = 1 ]; then
    ROWS+=("| $name | dry run | - |")
    return 0
  fi
  start=$SECONDS
  set +e
  timeout -k 10 "$limit" "$@" 2>&1 | tee "$PART_LOG" | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  set -e
  status=$(status_of "$rc")
  [ "$rc" = 0 ] || FAILED=1
  ROWS+=("| $name | $status | $((SECONDS - start)) |")
  say "-- $name: $status in $((SECONDS - start)) s"
}

status_of() {
  case $1 in
    0) echo pass ;;
    124 | 137) echo "FAIL (time limit)" ;;
    *) echo "FAIL (exit $1)" ;;
  esac
}

RUN=(run --dataset demo --data-root "$DEMO" --size tiny --device cuda --epochs 1
     --out "$WORK/runs" --set "train.views={clips: 1, crops: 1}")

part "demo set" "$LIMIT_DEMO" "$PY" -c \
  "import sys, pathlib; from composer.data.demo import demo_folder; demo_folder(pathlib.Path(sys.argv[1]))" "$DEMO"

part "pytest -m cuda" "$LIMIT_PYTEST" "$PY" -m pytest -m cuda tests/test_cuda.py -q -rs

# NCCL_DEBUG=INFO makes NCCL say when it starts: a run that never built an NCCL group checked nothing
part "torchrun, 1 process, NCCL" "$LIMIT_NCCL" env NCCL_DEBUG=INFO "$PY" -m torch.distributed.run --standalone \
  --nproc-per-node 1 --no-python "$PY" -m composer.cli "${RUN[@]}" --max-steps 3 --workers 2 specs/baselines/clip-adapter.yaml
if [ "$DRY" != 1 ] && [[ ${ROWS[-1]} == *"| pass |"* ]] && ! grep -q "NCCL INFO" "$PART_LOG"; then
  say "-- the run passed without starting NCCL (no process group at world size 1?): nothing was checked"
  ROWS[-1]="| torchrun, 1 process, NCCL | FAIL (NCCL never started) | - |"
  FAILED=1
fi

# FSDP's resume over NCCL: two processes, one GPU each (NCCL refuses two ranks on one GPU), so only where two
# GPUs are visible; the same test runs on the CPU over gloo in the suite
if [ "$DRY" = 1 ] || [ "$("$PY" -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
  part "FSDP resume, 2 processes, NCCL" "$LIMIT_FSDP" "$PY" -m pytest -m cuda tests/test_fsdp_resume.py -q -rs
else
  say ""
  say "== FSDP resume, 2 processes, NCCL: skipped (one GPU visible; it needs two)"
  ROWS+=("| FSDP resume, 2 processes, NCCL | skipped (needs 2 GPUs) | - |")
fi

# every paper spec side by side (the GPU has room for all of them), each under its own limit, one log each
papers() {
  local start=$SECONDS pids=() names=() spec name rc ok=0 bad=0
  mkdir -p "$OUT/papers"
  for spec in specs/papers/*.yaml; do
    name=$(basename "$spec" .yaml)
    say "   $(printf '%q ' "$PY" -m composer.cli "${RUN[@]}" --precision bf16 --max-steps 3 --workers 1 "$spec")"
    [ "$DRY" = 1 ] && continue
    timeout -k 10 "$LIMIT_PAPER" "$PY" -m composer.cli "${RUN[@]}" --precision bf16 --max-steps 3 --workers 1 \
      "$spec" > "$OUT/papers/$name.log" 2>&1 &
    pids+=("$!")
    names+=("$name")
  done
  [ "$DRY" = 1 ] && { ROWS+=("| paper specs, tiny, bf16 | dry run | - |"); return 0; }
  for i in "${!pids[@]}"; do
    set +e
    wait "${pids[$i]}"
    rc=$?
    set -e
    {
      echo "-- ${names[$i]}: $(status_of "$rc")"
      tail -n 25 "$OUT/papers/${names[$i]}.log" | sed 's/^/   /'
    } | tee -a "$LOG"
    if [ "$rc" = 0 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); FAILED=1; fi
    ROWS+=("| paper: ${names[$i]} | $(status_of "$rc") | - |")
  done
  ROWS+=("| paper specs, tiny, bf16 | $ok pass, $bad fail | $((SECONDS - start)) |")
}
say ""
say "== paper specs at tiny size, bf16, 3 steps (limit ${LIMIT_PAPER}s each, side by side)"
papers

export COMPOSER_BENCH_RESULTS=$OUT/bench
part "benchmark: overhead (step time, GPU peak)" "$LIMIT_OVERHEAD" "$PY" benchmarks/overhead.py --repeats 3
part "benchmark: plan (step time, GPU peak)" "$LIMIT_PLAN" "$PY" benchmarks/plan.py --base --repeats 3
part "benchmark: input pipeline before/after (clips/s into the GPU)" "$LIMIT_PIPELINE" "$PY" benchmarks/pipeline.py \
  --device cuda --videos 32 --repeats 2 --workers 4
part "memory bill: predicted peak against max_memory_allocated" "$LIMIT_MEMORY" "$PY" benchmarks/memory_check.py \
  --device cuda --batch-size 4

{
  echo "## GPU check"
  echo ""
  if [ "$DRY" = 1 ]; then
    echo "Dry run: nothing was executed."
  else
    echo "\`benchmarks/gpu_check.sh\` on $(date +%Y-%m-%d): $(nvidia-smi --query-gpu=name --format=csv,noheader \
      | head -n 1), $("$PY" -c 'import torch; print("torch", torch.__version__)')."
  fi
  echo ""
  echo "| part | status | seconds |"
  echo "|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  for table in "$OUT"/bench/*.md; do
    if [ -e "$table" ]; then
      echo ""
      sed 's/^## \(.*\)/### \1, on the GPU/' "$table"
    fi
  done
} > "$SUMMARY"
say ""
tee -a "$LOG" < "$SUMMARY"
say ""
say "log: $LOG; summary (for benchmarks/RESULTS.md): $SUMMARY"
exit "$FAILED"
