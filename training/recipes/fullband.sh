#!/usr/bin/env bash
# The full-band mel front-end (issue #15): the exact commands behind docs/results.md's "The mel front-end", resumable.
#   bash training/recipes/fullband.sh levers    # the VAE's latent channels at equal steps, from scratch (4 vs 8)
#   bash training/recipes/fullband.sh vae       # the VAE on the 0-8000 Hz mel, warm-started from the shipped VAE
#   NAME=fullband-s2 VAE_STEPS=1400 VAE_INIT=$RUNS/fullband-s1/stages/vae/vae.safetensors \
#     bash training/recipes/fullband.sh vae     # ... and 1400 steps more from there (fullband-s2: 2000 in all)
#   bash training/recipes/fullband.sh main      # the denoiser on its latents, warm-started from the shipped one
#   bash training/recipes/fullband.sh export    # detector stage + bundle
#   bash training/recipes/fullband.sh evaluate  # docs/results.md's controls table (vocoded, reconstruction, generated)
#   bash training/recipes/fullband.sh ship      # resources/models/default (if it beats the shipped model)
# The run (spec foley-16k) adopts the shipped bundle's projection and Griffin-Lim (training.adopt: the VAE is not
# adopted across a front-end change), on the same 1000-clip dataset and split as the hits model, so the comparison
# with the shipped model isolates the front-end. Every step resumes from its newest checkpoint.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-$HOME/.cache/mdsgen-foley/data/foley_real_s0}
RUNS=${RUNS:-$HOME/.cache/mdsgen-foley/runs}
CACHE=${CACHE:-$RUNS/cache-16k-s0}
NAME=${NAME:-fullband-s1}
SHIPPED=resources/models/default
[ -f "$DATA/splits.json" ] || .venv/bin/python -m training.datasets.foley_real build --out "$DATA" --seed 0 --num-clips 1000
# the hits model's training levers (docs/results.md, "Training levers"), so only the front-end differs
WON=(--set denoiser.min_snr_gamma=5.0 --set denoiser.mask_kind=none --set denoiser.video_shift_prob=0.25)
common=(--config default --data "$DATA" --runs-dir "$RUNS" --from-bundle "$SHIPPED" --no-progress --name "$NAME"
        --set spec=foley-16k --set "data.cache_dir=$CACHE" --set runtime.threads=2
        --set "vae.init_from=${VAE_INIT:-$SHIPPED/vae.safetensors}" --set vae.loop.steps="${VAE_STEPS:-600}"
        --set vae.optim.warmup_steps=50 --set vae.loop.val_every=200 --set vae.loop.ckpt_every=100
        --set "denoiser.init_from=$SHIPPED/denoiser.safetensors" --set denoiser.optim.warmup_steps=50
        --set denoiser.loop.steps="${MAIN_STEPS:-1000}" --set denoiser.loop.val_every=200
        --set denoiser.loop.ckpt_every=100 "${WON[@]}")
run() { OMP_WAIT_POLICY=PASSIVE nice -n 5 .venv/bin/python -m training.run "${common[@]}" "$@"; }
case "${1:-}" in
  levers)  # LEVER_STEPS VAE steps each on the same cache; scored by training.vocoder_levers --vae (docs/results.md)
    for ch in 4 8; do
      OMP_WAIT_POLICY=PASSIVE nice -n 5 .venv/bin/python -m training.run --config default --data "$DATA" \
        --runs-dir "$RUNS" --no-progress --name "vae-lever-c$ch" --stages vae --set spec=foley-16k \
        --set "spec_overrides={latent_channels: $ch}" --set "data.cache_dir=$CACHE" --set runtime.threads=2 \
        --set vae.loop.steps="${LEVER_STEPS:-600}" --set vae.loop.val_every=200 --set vae.loop.ckpt_every=100
    done
    .venv/bin/python -m training.vocoder_levers --out "$RUNS/vae-levers" --iters 32 \
      --vae "diff-foley:$SHIPPED" --vae "foley-16k:$RUNS/$NAME/stages/vae" \
      --vae "foley-16k:$RUNS/vae-lever-c4/stages/vae" --vae "foley-16k:$RUNS/vae-lever-c8/stages/vae"
    ;;
  vae) run --stages vae ;;
  main) run --stages denoiser ;;
  export) run --stages detector,export ;;
  evaluate)
    .venv/bin/python -m training.evaluate "$RUNS/$NAME/bundle" --data "$DATA" --cache "$CACHE" \
      --metrics onset,category,fad,alignment --controls vocoded,reconstruction,shuffled --hits auto \
      --out "${EVAL:-$RUNS/$NAME/eval}" --no-progress --threads 2
    ;;
  ship) .venv/bin/python -m training.ship "$RUNS/$NAME" --data "$DATA" --eval "${EVAL:-$RUNS/$NAME/eval}" ;;
  *) echo "usage: bash training/recipes/fullband.sh vae|main|export|evaluate|ship" >&2; exit 2 ;;
esac
