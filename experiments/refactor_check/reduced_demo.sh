#!/bin/bash
# A reduced `make demo` (small simulated file, few steps, deterministic) run from a given checkout, for before/after
# comparisons of a refactor: experiments/refactor_check/README.md.
# usage: experiments/refactor_check/reduced_demo.sh CHECKOUT OUT_DIR [PYTHON]
set -euo pipefail
REPO=$(cd "$1" && pwd); OUT=$2; PY=${3:-$REPO/.venv/bin/python}
mkdir -p "$OUT/data"
export PYTHONPATH=$REPO NEUROCLIPS_RUNS_DIR=$OUT/runs NEUROCLIPS_DATA_DIR=$OUT/data HF_HUB_OFFLINE=1 WANDB_MODE=disabled
cd "$REPO"
"$PY" -m neuroclips.data.simulate out="$OUT/data/sim.h5" scale=tiny n_train=120 n_test=20 segment_len=40
# the epoch counts under the checkout's key names: train.* (conf/train/) since the recipe move, scale.* before it
if [ -d conf/train ]; then EPOCHS=(train.sr.epochs=2 train.sr_prior.epochs=2 train.pr.max_epochs=1)
else EPOCHS=(scale.sr.train.epochs=2 scale.sr.prior_train.epochs=2 scale.pr.max_epochs=1); fi
# the stand-in step counts likewise: train.standins.* since they left scale, scale.pr.standin / scale.standins before
if grep -q '^standins:' conf/train/tiny.yaml 2>/dev/null
then STANDINS=(train.standins.vae.steps=40 train.standins.classifiers.steps=40)
else STANDINS=(scale.pr.standin.steps=40 scale.standins.classifiers.steps=40); fi
"$PY" -m neuroclips.pipeline experiment=demo subj=1 data.file="$OUT/data/sim.h5" "${STANDINS[@]}" "${EPOCHS[@]}" \
  deterministic=true logger=none trainer.enable_progress_bar=false
