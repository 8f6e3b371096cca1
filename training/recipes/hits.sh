#!/usr/bin/env bash
# The hits model (issue #14): the exact commands behind docs/results.md's "Hits" section, resumable.
#   bash training/recipes/hits.sh levers   # Min-SNR-5 and the hit path's learning rate at equal steps
#   LEVER_STEPS=50 bash training/recipes/hits.sh lever NAME [--set KEY=VALUE ...]   # one of them
#   bash training/recipes/hits.sh main     # the long run (warm start from the shipped default-s3), resumable
#   bash training/recipes/hits.sh export   # detector stage + bundle of the main run
#   bash training/recipes/hits.sh evaluate # docs/results.md's table, shift test and hits-samples.png
#   bash training/recipes/hits.sh ship     # resources/models/default (if it beats the shipped model)
# Every run adopts the shipped bundle's VAE, projection and Griffin-Lim (training.adopt), so the new denoiser is
# warm-started from default-s3's in the same latent space; they share one feature cache.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-$HOME/.cache/mdsgen-foley/data/foley_real_s0}
RUNS=${RUNS:-$HOME/.cache/mdsgen-foley/runs}
CACHE=${CACHE:-$RUNS/cache-s0}
[ -f "$DATA/splits.json" ] || .venv/bin/python -m training.datasets.foley_real build --out "$DATA" --seed 0 --num-clips 1000
common=(--config default --data "$DATA" --runs-dir "$RUNS" --from-bundle resources/models/default --no-progress
        --set "data.cache_dir=$CACHE" --set runtime.threads=2
        --set denoiser.init_from=resources/models/default/denoiser.safetensors
        --set denoiser.optim.warmup_steps=50)
LEVER_STEPS=${LEVER_STEPS:-100}
# what the levers decided (docs/results.md): Min-SNR-5, the unmasked pass only, and the video-shift augmentation
WON="denoiser.min_snr_gamma=5.0 denoiser.mask_kind=none denoiser.video_shift_prob=0.25"
lever() {  # name, overrides...
  local name=$1; shift
  nice -n 5 .venv/bin/python -m training.run "${common[@]}" --name "$name" --stages denoiser \
    --set denoiser.loop.steps="$LEVER_STEPS" --set denoiser.loop.val_every=50 --set denoiser.loop.ckpt_every=50 "$@"
}
case "${1:-}" in
  levers)  # as run: the base to 100 steps, the variants compared with it at equal cost
    lever hits-lever-base
    LEVER_STEPS=50 lever hits-lever-minsnr --set denoiser.min_snr_gamma=5.0
    lever hits-lever-nomask --set denoiser.mask_kind=none
    LEVER_STEPS=50 lever hits-lever-lr1 --set denoiser.hit_lr_mult=1.0
    ;;
  lever)
    shift
    lever "$@"
    ;;
  main)
    # MAIN_STEPS: total denoiser steps; MAIN_OVERRIDES: the levers that won (docs/results.md, "Training levers").
    # The shipped run continued the base lever's 100 steps (its checkpoint is copied in when the run has none).
    base_ckpt="$RUNS/hits-lever-base/stages/denoiser/ckpt-00000100.pt"
    stage="$RUNS/${MAIN_NAME:-hits-s1}/stages/denoiser"
    if [ -f "$base_ckpt" ] && ! ls "$stage"/ckpt-*.pt >/dev/null 2>&1; then
      mkdir -p "$stage" && cp "$base_ckpt" "$RUNS/hits-lever-base/stages/denoiser/losses.csv" "$stage/"
    fi
    extra=()
    for o in ${MAIN_OVERRIDES:-$WON}; do extra+=(--set "$o"); done
    OMP_WAIT_POLICY=PASSIVE nice -n 5 .venv/bin/python -m training.run "${common[@]}" --name "${MAIN_NAME:-hits-s1}" \
      --stages denoiser --set denoiser.loop.steps="${MAIN_STEPS:-1500}" --set denoiser.loop.val_every=200 \
      --set denoiser.loop.ckpt_every=100 "${extra[@]}"
    ;;
  export)
    extra=()
    for o in ${MAIN_OVERRIDES:-$WON}; do extra+=(--set "$o"); done
    .venv/bin/python -m training.run "${common[@]}" --name "${MAIN_NAME:-hits-s1}" --stages detector,export \
      --set denoiser.loop.steps="${MAIN_STEPS:-1500}" --set denoiser.loop.val_every=200 \
      --set denoiser.loop.ckpt_every=100 "${extra[@]}"
    ;;
  evaluate)  # the bundle through the engine on the 100 test clips: detected hits, true hits, none, shuffled, shift
    .venv/bin/python -m training.evaluate "$RUNS/${MAIN_NAME:-hits-s1}/bundle" --data "$DATA" --cache "$CACHE" \
      --metrics onset,category,fad,alignment,shift --controls gt_hits,no_hits,shuffled --hits auto \
      --out "${EVAL:-$RUNS/${MAIN_NAME:-hits-s1}/eval}" --no-progress --threads 2
    ;;
  ship)
    .venv/bin/python -m training.ship "$RUNS/${MAIN_NAME:-hits-s1}" --data "$DATA" \
      --eval "${EVAL:-$RUNS/${MAIN_NAME:-hits-s1}/eval}"
    ;;
  *) echo "usage: bash training/recipes/hits.sh levers|lever NAME ...|main|export|evaluate|ship" >&2; exit 2 ;;
esac
