#!/usr/bin/env bash
# Run `pivotrl eval` on the same model, data, prompt and decoding as run_lm_eval.sh, timed the same way.
#   usage: bench/lm_eval_mgsm/run_pivotrl.sh LANGS N BATCH_SIZE      e.g.  run_pivotrl.sh de,zh,sw 5 4
# Writes out/pivotrl_bs{B}/: pivotrl's run folder (config.json, generations.jsonl, metrics.*), timing.json,
# time_v.txt, log.txt. The folder is emptied first: `pivotrl eval` resumes an existing run folder, which
# would make the timing meaningless.
# Needs: the main venv (/work/main/.venv, `make setup`) and save_model.py run first.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
if [ $# -ne 3 ]; then
    echo "usage: $0 LANGS N BATCH_SIZE   (LANGS comma-separated, e.g. de,zh,sw; N items per language)" >&2
    exit 2
fi
LANGS="$1"; N="$2"; BS="$3"
MODEL_NAME="${MODEL_NAME:-smollm2}"  # a pivotrl alias, saved by save_model.py into out/$MODEL_NAME
MODEL="$HERE/out/$MODEL_NAME"
CHAT="${CHAT:-0}"  # 1: apply the model's chat template, as lm-eval --apply_chat_template
OUT="$HERE/out/${MODEL_NAME}_pivotrl_bs$BS$([ "$CHAT" = 1 ] && echo _chat || true)"
PIVOTRL="${PIVOTRL:-$REPO/.venv/bin/pivotrl}"
[ -x "$PIVOTRL" ] || { echo "no $PIVOTRL: run 'make setup' in $REPO first" >&2; exit 1; }
[ -f "$MODEL/config.json" ] || { echo "no model in $MODEL: run $REPO/.venv/bin/python $HERE/save_model.py --model $MODEL_NAME --out $MODEL first" >&2; exit 1; }

export PIVOTRL_DATA_DIR="${PIVOTRL_DATA_DIR:-$(cd "$REPO/.." && pwd)/shared/data}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

rm -rf "$OUT"
mkdir -p "$OUT"
LOG="$(mktemp)"
cd "$HERE"
set +e
python3 "$HERE/timed.py" --out "$OUT/timing.json" --tool pivotrl --batch-size "$BS" \
    --langs "$LANGS" --n "$N" -- \
    "$PIVOTRL" eval \
        --model "$MODEL" \
        --task mgsm \
        --langs "$LANGS" \
        -n "$N" \
        --prompt mgsm \
        $([ "$CHAT" = 1 ] && echo --chat || echo --no-chat) \
        --max-new-tokens 256 \
        --batch-size "$BS" \
        --out "$OUT" \
    2>&1 | tee "$LOG"
code="${PIPESTATUS[0]}"
set -e
mv "$LOG" "$OUT/log.txt"
exit "$code"
