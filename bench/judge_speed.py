"""Time per answer of the local reference judge on this machine, by model, dtype and batch size, side by side.

    .venv/bin/python bench/judge_speed.py --source runs/judge/samples --refs runs/reproduce/qwen-rft/pivot \
        --settings qwen1.5b:float32:8,qwen1.5b:bfloat16:8,qwen1.5b:bfloat16:16,qwen0.5b:bfloat16:8 -n 32

Every setting judges the same answers: the first ``n`` rows of an eval run's generations (real sampled answers)
that have a pivot reference, with their questions, through :class:`pivotrl.rewards.judge.ReferenceJudge` with a
fresh cache (so every answer is a forward pass). A setting is ``model:dtype:batch_size``. Prints seconds per
answer (load time excluded), the speed ratio to the first setting, the mean prompt length in tokens, and the
largest score difference from the first setting when it is the same model.
"""

from __future__ import annotations

import argparse
import json
import time

from pivotrl.rewards.audit.cases import cases_from_generations, references_from_store
from pivotrl.rewards.audit.report import questions_from_run
from pivotrl.rewards.judge import JudgeCache, LocalJudge, ReferenceJudge, judge_messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, help="eval run folder (generations.jsonl, config.json)")
    parser.add_argument("--refs", required=True, help="pivot folder with references.jsonl")
    parser.add_argument("--settings", default="qwen1.5b:float32:8,qwen1.5b:bfloat16:8")
    parser.add_argument("-n", type=int, default=32)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    cases = cases_from_generations(args.source, references_from_store(args.refs),
                                   questions=questions_from_run(args.source))[: args.n]
    rows, first = [], None
    for setting in args.settings.split(","):
        model, dtype, batch = setting.split(":")
        backend = LocalJudge(model, device="cpu", dtype=dtype, batch_size=int(batch))
        backend._model()  # load outside the timing
        judge = ReferenceJudge(backend, cache=JudgeCache())
        started = time.perf_counter()
        scores = judge([c.response for c in cases], reference=[c.reference for c in cases],
                       reference_answer=[c.reference_answer for c in cases], lang=[c.lang for c in cases],
                       question=[c.question or None for c in cases])
        seconds = (time.perf_counter() - started) / len(cases)
        tokenizer = backend._loaded.tokenizer
        lengths = [len(tokenizer(tokenizer.apply_chat_template(
            judge_messages(c.question, c.reference, c.reference_answer, c.response, c.lang), tokenize=False,
            add_generation_prompt=True), add_special_tokens=False).input_ids) for c in cases]
        row = {"setting": setting, "seconds_per_answer": seconds, "prompt_tokens": sum(lengths) / len(lengths),
               "scores": scores}
        if first is None:
            first = row
        row["ratio"] = first["seconds_per_answer"] / seconds
        same = first["setting"].split(":")[0] == model
        row["max_diff"] = max(abs(a - b) for a, b in zip(scores, first["scores"])) if same else None
        rows.append(row)
        print(f"{setting:24s} {seconds:6.2f} s/answer  x{row['ratio']:.2f}  {row['prompt_tokens']:.0f} tokens"
              + (f"  max |diff| {row['max_diff']:.3f}" if row["max_diff"] is not None else ""), flush=True)
        del backend, judge
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
