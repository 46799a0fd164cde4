"""One linear layer, plain ``nn.Linear`` (MKL's float32 GEMM) vs oneDNN on a packed weight, by number of rows.

    .venv/bin/python bench/linear_kernels.py                      # Qwen2.5-0.5B's MLP and output layer shapes
    .venv/bin/python bench/linear_kernels.py --shapes 1536x8960 --rows 1,8,32

A decode step multiplies as many rows as there are sequences in flight by every weight matrix; a prefill
multiplies hundreds. This is the micro-benchmark behind ``pivotrl.packed_linear``: milliseconds per product for
each (shape, rows), the ratio, and the largest difference between the two results (both float32; only the
summation order differs). Random weights: the speed of a GEMM does not depend on the values.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch

from pivotrl.packed_linear import can_pack


def _ms(product, repeats: int) -> float:
    product()
    start = time.perf_counter()
    for _ in range(repeats):
        product()
    return (time.perf_counter() - start) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default="896x4864,4864x896,896x151936",
                        help="comma-separated IN x OUT features (default: Qwen2.5-0.5B's up, down and output layers)")
    parser.add_argument("--rows", default="1,4,8,16,32,64,300")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if not can_pack():
        raise SystemExit("this torch build has no oneDNN packed linear")
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| in x out | rows | plain ms | packed ms | plain / packed | max abs difference |")
    print("|---|---|---|---|---|---|")
    for shape in args.shapes.split(","):
        inputs, outputs = (int(n) for n in shape.split("x"))
        weight = torch.randn(outputs, inputs) / inputs**0.5
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, 32)
        for rows in (int(r) for r in args.rows.split(",")):
            x = torch.randn(rows, inputs)
            plain_product = partial(torch.nn.functional.linear, x, weight)
            packed_product = partial(torch.ops.mkldnn._linear_pointwise, x, packed, None, "none", [], "")
            plain, fast = _ms(plain_product, args.repeats), _ms(packed_product, args.repeats)
            difference = (plain_product() - packed_product()).abs().max()
            print(f"| {inputs} x {outputs} | {rows} | {plain:.2f} | {fast:.2f} | {plain / fast:.2f}x | "
                  f"{difference:.1e} |", flush=True)


if __name__ == "__main__":
    main()
