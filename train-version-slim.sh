#!/usr/bin/env bash
# Train ULFD version-slim (320x240) on the VOC tree of data/wider_face_2_voc_add_landmark.py.
# Every value can be overridden by an environment variable or by extra flags:
#   EPOCHS=1 BATCH_SIZE=8 sh train-version-slim.sh --max-iters 20
set -e
cd "$(dirname "$0")"
exec python tools/train.py \
  --model "${MODEL:-ulfd-slim-320}" \
  --data-root "${DATA_ROOT:-./data/wider_face_add_lm_10_10}" \
  --output-dir "${OUTPUT_DIR:-output/train/${MODEL:-ulfd-slim-320}}" \
  ${EPOCHS:+--epochs "$EPOCHS"} ${LR:+--lr "$LR"} ${BATCH_SIZE:+--batch-size "$BATCH_SIZE"} \
  ${MILESTONES:+--milestones "$MILESTONES"} ${INPUT_SIZE:+--input-size "$INPUT_SIZE"} \
  --workers "${WORKERS:-2}" \
  "$@"
