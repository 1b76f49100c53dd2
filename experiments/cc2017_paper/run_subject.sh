#!/usr/bin/env bash
# The exact stage sequence for one cc2017 subject at paper scale on the GPUs of one node.
# Usage: [RECIPE=default|reference] experiments/cc2017_paper/run_subject.sh SUBJ [TRAINER]
#   TRAINER: gpu (1 process) | ddp | fsdp (one process per GPU of this node; default ddp)
#   RECIPE:  default (checkpoints chosen on the validation split carved from the training clips) | reference
#            (the released code's choices: sr at its minimum test loss, sr_prior at its last epoch, pr at its best
#            test PixCorr; the eval report then says that model selection looked at the test set)
# Needs data/cc2017.h5 (make convert SRC=...) and the weights listed in README.md under $NEUROCLIPS_WEIGHTS_DIR.
#
# What the fit stages run: every batch size is the GLOBAL batch of one optimizer step, as the one-GPU reference
# used it (sr 720, sr_prior 64, pr 40 clips; conf/train/paper.yaml). With N processes each GPU loads
# batch/N clips (a batch that N does not divide is refused before training: 64 and 40 need N in 1, 2, 4, 8), and
# the contrastive terms gather all N pieces (system.gather_negatives, system.gather_contrastive), so the run is the
# one-GPU reference experiment, N times faster. One difference remains: the PR's temporal window (the reference's
# all 240 frames of a batch) spans the 40/N clips of one GPU; trainer=gpu keeps it whole.
set -euo pipefail
SUBJ=${1:?subject 1, 2 or 3}
TRAINER=${2:-ddp}
RECIPE=${RECIPE:-default}
COMMON=(data=cc2017 scale=paper subj="$SUBJ" name=cc2017_paper recipe="$RECIPE")
ME2=${NEUROCLIPS_WEIGHTS_DIR:-weights}/mindeyev2/final_subj01_pretrained_40sess_24bs/last.pth
if [ "$TRAINER" = gpu ]; then NPROC=1; else NPROC=$( (nvidia-smi -L 2>/dev/null || true) | wc -l ); fi  # ddp/fsdp: all GPUs
echo "recipe=$RECIPE trainer=$TRAINER: $NPROC process(es); global batches sr 720, sr_prior 64, pr 40 (per GPU: batch/$NPROC)"
run() { echo "+ python -m neuroclips.train $*"; python -m neuroclips.train "$@"; }

run stage=targets "${COMMON[@]}" trainer=gpu                       # once per data file; skipped when cached
run stage=sr "${COMMON[@]}" trainer="$TRAINER" init.mindeye2_ckpt="$ME2"
run stage=sr_prior "${COMMON[@]}" trainer="$TRAINER"
run stage=pr "${COMMON[@]}" trainer="$TRAINER"
run stage=blurry "${COMMON[@]}" trainer="$TRAINER"                  # predict stages shard the 1200 test clips
run stage=keyframe "${COMMON[@]}" trainer="$TRAINER"
run stage=video "${COMMON[@]}" trainer="$TRAINER"
run stage=eval "${COMMON[@]}" trainer=gpu
