#!/usr/bin/env bash
# The exact stage sequence for one cc2017 subject at paper scale on the GPUs of one node.
# Usage: experiments/cc2017_paper/run_subject.sh SUBJ [TRAINER]   (TRAINER: gpu | ddp | fsdp; default ddp)
# Needs data/cc2017.h5 (make convert SRC=...) and the weights listed in README.md under $NEUROCLIPS_WEIGHTS_DIR.
set -euo pipefail
SUBJ=${1:?subject 1, 2 or 3}
TRAINER=${2:-ddp}
COMMON=(data=cc2017 scale=paper subj="$SUBJ" name=cc2017_paper)
ME2=${NEUROCLIPS_WEIGHTS_DIR:-weights}/mindeyev2/final_subj01_pretrained_40sess_24bs/last.pth
run() { echo "+ python -m neuroclips.train $*"; python -m neuroclips.train "$@"; }

run stage=targets "${COMMON[@]}" trainer=gpu                       # once per data file; skipped when cached
run stage=sr "${COMMON[@]}" trainer="$TRAINER" init.mindeye2_ckpt="$ME2"
run stage=sr_prior "${COMMON[@]}" trainer="$TRAINER"
run stage=pr "${COMMON[@]}" trainer="$TRAINER"
run stage=blurry "${COMMON[@]}" trainer="$TRAINER"                  # predict stages shard the 1200 test clips
run stage=keyframe "${COMMON[@]}" trainer="$TRAINER"
run stage=video "${COMMON[@]}" trainer="$TRAINER"
run stage=eval "${COMMON[@]}" trainer=gpu
