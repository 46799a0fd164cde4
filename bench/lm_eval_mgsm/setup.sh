#!/usr/bin/env bash
# Create bench/lm_eval_mgsm/.venv: a venv of its own holding lm-evaluation-harness with its HF backend.
# Order matters: torch==2.13.0 first (the CPU wheel on this machine; an unpinned torch would pull CUDA),
# then lm-eval[hf]==0.4.13 with transformers and the other shared libraries held at the versions pivotrl
# uses (../../constraints.txt), so both tools run the same transformers code.
# Idempotent: does nothing when the venv already has the pinned versions.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="$HERE/.venv"
TORCH="${TORCH:-torch==2.13.0}"
LM_EVAL="${LM_EVAL:-lm-eval[hf]==0.4.13}"
TRANSFORMERS="${TRANSFORMERS:-transformers==5.23.0}"

installed_ok() {
    [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/lm_eval" ] || return 1
    "$VENV/bin/python" - <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
want = {"torch": "2.13.0", "lm_eval": "0.4.13", "transformers": "5.23.0"}
got = {k: version(k).split("+")[0] for k in want}
sys.exit(0 if got == want else 1)
PY
}

if installed_ok; then
    echo "setup.sh: $VENV already has torch 2.13.0, lm_eval 0.4.13, transformers 5.23.0; nothing to do"
    exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "$TORCH"
# -c: the versions pivotrl is tested with (transformers, accelerate, datasets, peft, tokenizers, ...).
"$VENV/bin/pip" install --quiet -c "$REPO/constraints.txt" "$LM_EVAL" "$TRANSFORMERS"
"$VENV/bin/pip" check || true
if ! installed_ok; then
    echo "setup.sh: versions after install are not the pinned ones:" >&2
    "$VENV/bin/pip" list 2>/dev/null | grep -i -E '^(torch|lm.eval|transformers) ' >&2
    exit 1
fi
"$VENV/bin/python" -c 'import torch, transformers, lm_eval; from importlib.metadata import version as v; print("setup.sh: torch", torch.__version__, "transformers", transformers.__version__, "lm_eval", v("lm_eval"))'
