#!/usr/bin/env bash
# Run lm-eval's HF backend on mgsm_local_native_cot_{lang} (= lm-eval's mgsm_native_cot_{lang} on the local
# MGSM files), zero-shot, no chat template, greedy, CPU, timed.
#   usage: bench/lm_eval_mgsm/run_lm_eval.sh LANGS N BATCH_SIZE      e.g.  run_lm_eval.sh de,zh,sw 5 4
# Writes out/lm_eval_bs{B}/: lm-eval's results_*.json and samples_*.jsonl, timing.json, time_v.txt, log.txt.
# Needs: setup.sh and save_model.py run first. Data: $PIVOTRL_DATA_DIR, else ../shared/data beside the repo.
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
CHAT="${CHAT:-0}"  # 1: apply the model's chat template (--apply_chat_template), as pivotrl eval --chat
OUT="$HERE/out/${MODEL_NAME}_lm_eval_bs$BS$([ "$CHAT" = 1 ] && echo _chat || true)"
VENV="$HERE/.venv"
[ -x "$VENV/bin/lm_eval" ] || { echo "no $VENV/bin/lm_eval: run $HERE/setup.sh first" >&2; exit 1; }
[ -f "$MODEL/config.json" ] || { echo "no model in $MODEL: run /work/main/.venv/bin/python $HERE/save_model.py --model $MODEL_NAME --out $MODEL first" >&2; exit 1; }

export PIVOTRL_DATA_DIR="${PIVOTRL_DATA_DIR:-$(cd "$REPO/.." && pwd)/shared/data}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# Keep the datasets cache of the local tasks out of ~/.cache and the repo's tracked files.
export HF_DATASETS_CACHE="$HERE/out/hf_datasets_cache"

TASKS=""
IFS=',' read -r -a LANG_LIST <<< "$LANGS"
for lang in "${LANG_LIST[@]}"; do
    TASKS="${TASKS:+$TASKS,}mgsm_local_native_cot_$lang"
done

# The task files must still mirror the installed lm-eval's mgsm_native_cot_* tasks.
"$VENV/bin/python" "$HERE/check_tasks.py"

rm -rf "$OUT"
mkdir -p "$OUT"
cd "$HERE"
"$VENV/bin/python" "$HERE/timed.py" --out "$OUT/timing.json" --tool lm-eval --batch-size "$BS" \
    --langs "$LANGS" --n "$N" -- \
    "$VENV/bin/lm_eval" run \
        --model hf \
        --model_args "pretrained=$MODEL,dtype=float32" \
        --device cpu \
        --tasks "$TASKS" \
        --include_path "$HERE/tasks" \
        --num_fewshot 0 \
        --limit "$N" \
        --batch_size "$BS" \
        --log_samples \
        $([ "$CHAT" = 1 ] && echo --apply_chat_template) \
        --output_path "$OUT" \
    2>&1 | tee "$OUT/log.txt"
exit "${PIPESTATUS[0]}"
