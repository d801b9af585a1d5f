# Two entry points: `make demo` (the main job) and `make test` (the suite).
# Each sets up what it needs: FFmpeg's shared libraries (for torchcodec) and a pinned virtual environment.
PY := .venv/bin/python
export HF_HUB_OFFLINE := 1

.PHONY: setup demo test bench gpu-check
setup: .venv/.installed

.venv/.installed: requirements.txt pyproject.toml
	@command -v ffmpeg >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends ffmpeg; }
	python3 -m venv .venv
	.venv/bin/pip install -q -r requirements.txt
	.venv/bin/pip install -q --no-deps --no-build-isolation -e .
	touch $@

# The main job: a paper spec (MSTA) on the offline demo set with tiny backbones on the CPU, on the shipped
# demo weights (a tiny ViCLIP pretrained here on captioned synthetic motion, docs/demo-weights.md): first
# the frozen ViCLIP alone (zero-shot, nothing trains), then MSTA's adapters trained on it for 10 epochs at
# batch 8 (the learning table's setting, benchmarks/learning.md: the demo's 192 training clips in 24 steps).
demo: setup
	@echo "make demo: the frozen tiny ViCLIP (demo weights) classifies the demo's 8 motions zero-shot, then MSTA trains its adapters on it (10 epochs); chance 12.5%, and a frame average cannot pass 50% since reversed twins look the same to it"
	.venv/bin/composer run specs/baselines/viclip-zero-shot.yaml --dataset demo --size tiny --weights demo
	.venv/bin/composer run specs/papers/msta.yaml --dataset demo --size tiny --weights demo --epochs 10 \
	  --batch-size 8

test: setup
	$(PY) -m pytest

# Benchmarks (benchmarks/RESULTS.md); PyAV and matplotlib are benchmark-only dependencies.
bench: setup
	.venv/bin/pip install -q -r requirements-bench.txt
	$(PY) benchmarks/run_all.py

# GPU correctness on one CUDA GPU in under 5 minutes; the summary goes to benchmarks/gpu-check/summary.md
gpu-check: setup
	PY=$(PY) benchmarks/gpu_check.sh
