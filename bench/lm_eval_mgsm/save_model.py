"""Write pivotrl's packaged SmolLM2 as a plain transformers folder that both tools load.

Run with the MAIN venv:  /work/main/.venv/bin/python bench/lm_eval_mgsm/save_model.py [--model smollm2] [--out DIR]

The packaged model is a GGUF file; pivotrl's loader de-quantizes it into an ordinary transformers model.
Saving that once (weights + tokenizer + generation config) means lm-eval's HF backend and `pivotrl eval`
read byte-identical files, so any difference in the outputs comes from the tools, not from the weights.
Does nothing when the folder already holds a saved model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="pivotrl model spec (default: smollm2)")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "smollm2", help="folder to write")
    args = parser.parse_args()
    out: Path = args.out
    if (out / "config.json").is_file() and any(out.glob("*.safetensors")):
        print(f"save_model.py: {out} already holds a model; nothing to do")
        return 0

    from pivotrl.models import load_model

    t0 = time.perf_counter()
    loaded = load_model(args.model)
    out.mkdir(parents=True, exist_ok=True)
    loaded.model.save_pretrained(out)
    loaded.tokenizer.save_pretrained(out)
    info = {
        "spec": args.model,
        "source": loaded.source,
        "path": str(loaded.path),
        "dtype": str(next(loaded.model.parameters()).dtype),
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
    }
    # Beside the folder, not in it: the model folder holds only what save_pretrained writes.
    out.with_name(out.name + ".source.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(f"save_model.py: wrote {out} in {time.perf_counter() - t0:.1f} s: {info}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
