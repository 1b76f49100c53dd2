# neuroclips — `make help` lists the targets. Two set-up commands on a fresh machine: `make demo`, `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# The environment's source is neuroclips/utils/environment.py (DEFAULTS): every neuroclips entry point and the tests
# apply it themselves. These exports stay for what runs before or outside those, e.g. learning-check's and paper's
# scripts; keep them equal to DEFAULTS.
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export WANDB_MODE ?= offline
export WANDB_SILENT := true
export TOKENIZERS_PARALLELISM := false
SUBJ ?= 1
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: learning-check paper help install demo test test-fast test-slow lint format simulate convert clean clean-logs

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## create .venv and install neuroclips (editable) with the dev tools

demo: $(VENV)/.installed ## run the whole pipeline on the simulated dataset and write the HTML report
	$(PY) -m neuroclips.pipeline experiment=demo subj=$(SUBJ)

test: $(VENV)/.installed ## the test suite: fast tests, then the slow ones (DDP, resume, end-to-end)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-fast: $(VENV)/.installed ## only the fast tests
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-slow: $(VENV)/.installed ## only the slow tests (DDP, resume, end-to-end)
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS) || [ $$? -eq 5 ]


lint: $(VENV)/.installed ## ruff lint and the format check (CI runs it; `make format` fixes the format)
	$(VENV)/bin/ruff check neuroclips tests experiments
	$(VENV)/bin/ruff format --check neuroclips tests experiments

format: $(VENV)/.installed ## ruff format + import sorting
	$(VENV)/bin/ruff check --fix --select I neuroclips tests experiments
	$(VENV)/bin/ruff format neuroclips tests experiments

simulate: $(VENV)/.installed ## write the tiny simulated dataset to data/simulated_tiny.h5
	$(PY) -m neuroclips.data.simulate out=data/simulated_tiny.h5 scale=tiny

convert: $(VENV)/.installed ## convert the released cc2017 .pt files: make convert SRC=/path/to/cc2017_dataset
	$(PY) -m neuroclips.data.convert_cc2017 src=$(SRC) out=data/cc2017.h5

clean-logs: ## remove run directories (runs/, outputs/, multirun/)
	rm -rf runs outputs multirun lightning_logs wandb

clean: clean-logs ## remove the venv, caches and generated data
	rm -rf $(VENV) data .pytest_cache .ruff_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

paper: $(VENV)/.installed ## the cc2017 paper recipe for one subject on this node's GPUs: make paper SUBJ=1
	PATH=$(VENV)/bin:$$PATH experiments/cc2017_paper/run_subject.sh $(SUBJ) ddp

learning-check: $(VENV)/.installed ## regenerate experiments/simulated_benchmark/ (SR vs ridge, PR vs mean frame, demo metrics, end-to-end table with ablations and a closed-form ridge on the test and the validation clips, the PR against closed-form ridges, N-way classifiers, fitted unCLIP and video generator, the tiny VAEs by KL weight, the generators' VAE by crop size, PR plateau over 10 seeds)
	$(PY) experiments/simulated_benchmark/sr_vs_ridge.py
	$(PY) experiments/simulated_benchmark/sr_vs_ridge.py --n-train 2400 --n-test 240 --epochs 40
	$(PY) experiments/simulated_benchmark/pr_vs_mean_frame.py --data-file data/simulated_tiny.h5 --runs-dir runs
	$(PY) -m neuroclips.pipeline experiment=demo subj=1
	$(PY) experiments/simulated_benchmark/end_to_end.py --run runs/demo/subj1 --data-file data/simulated_tiny.h5
	$(PY) experiments/simulated_benchmark/end_to_end.py --run runs/demo/subj1 --data-file data/simulated_tiny.h5 --split val
	$(PY) experiments/simulated_benchmark/generator_vae_crops.py --data-file data/simulated_tiny.h5 --blurry runs/end_to_end_val/run/outputs
	$(PY) experiments/simulated_benchmark/pr_vs_ridge.py --run runs/demo/subj1 --data-file data/simulated_tiny.h5
	$(PY) experiments/simulated_benchmark/video_standin.py --data-file data/simulated_tiny.h5 --out experiments/simulated_benchmark/video_standin.md
	$(PY) experiments/simulated_benchmark/nway_classifiers.py --data-file data/simulated_tiny.h5
	$(PY) experiments/simulated_benchmark/unclip_standin.py --data-file data/simulated_tiny.h5 --out experiments/simulated_benchmark/unclip_standin.md
	$(PY) experiments/simulated_benchmark/vae_kl_weight.py --data-file data/simulated_tiny.h5
	$(PY) experiments/simulated_benchmark/pr_plateau_seeds.py --data-file data/simulated_tiny.h5 --runs-dir runs
	$(PY) experiments/simulated_benchmark/make_readme.py --demo-metrics runs/demo/subj1/eval/metrics.json
