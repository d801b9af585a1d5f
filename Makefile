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

# The main job: a paper spec (TDS-CLIP) trained and tested on the offline demo set with tiny backbones on
# the CPU. The side network is narrowed to 64 channels (from 320) to fit a few minutes on two cores.
demo: setup
	@echo "make demo: TDS-CLIP's side network trained 10 epochs beside a frozen tiny CLIP (random weights: the shipped demo weights do not transfer yet, docs/demo-weights.md); chance 12.5%, and a frame average cannot pass 50% since reversed twins look the same to it"
	.venv/bin/composer run specs/papers/tds-clip.yaml --dataset demo --size tiny --epochs 10 \
	  --set components.side.params.dim=64

test: setup
	$(PY) -m pytest

# Benchmarks (benchmarks/RESULTS.md); PyAV and matplotlib are benchmark-only dependencies.
bench: setup
	.venv/bin/pip install -q -r requirements-bench.txt
	$(PY) benchmarks/run_all.py

# GPU correctness on one CUDA GPU in under 5 minutes; the summary goes to benchmarks/gpu-check/summary.md
gpu-check: setup
	PY=$(PY) benchmarks/gpu_check.sh
