#!/usr/bin/env bash
# The whole MGSM comparison, one tool after the other on an otherwise idle machine:
#   pivotrl at its default batch size, lm-eval at the same batch size, lm-eval at its default batch size (1),
# then compare.py for agreement (against the matched run) and speed (against both).
#   usage: [MODEL_NAME=qwen0.5b] bench/lm_eval_mgsm/run_all.sh [LANGS] [N] [BATCH]   default: smollm2, de,sw,th 50 16
# de, sw and th are used because lm-eval's prompt labels equal pivotrl's there (see README: ja, zh and ru
# differ in a colon or a space).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
LANGS="${1:-de,sw,th}"; N="${2:-50}"; BS="${3:-16}"
export MODEL_NAME="${MODEL_NAME:-smollm2}"
O="$HERE/out/$MODEL_NAME"
"$HERE/setup.sh"
"$REPO/.venv/bin/python" "$HERE/save_model.py" --model "$MODEL_NAME" --out "$O"
"$HERE/run_pivotrl.sh" "$LANGS" "$N" "$BS"
"$HERE/run_lm_eval.sh" "$LANGS" "$N" "$BS"
# lm-eval at its own default batch size (1); WITH_BS1=0 skips it (an hour and more for the Qwen models here)
[ "${WITH_BS1:-1}" = 1 ] && "$HERE/run_lm_eval.sh" "$LANGS" "$N" 1
python3 "$HERE/compare.py" --lm-eval "${O}_lm_eval_bs$BS" --pivotrl "${O}_pivotrl_bs$BS" \
    --out-dir "${O}_matched"
[ "${WITH_BS1:-1}" = 1 ] && python3 "$HERE/compare.py" --lm-eval "${O}_lm_eval_bs1" \
    --pivotrl "${O}_pivotrl_bs$BS" --out-dir "${O}_lm_eval_default"
exit 0
