"""Model files found by the libFuzzer target (csrc/fuzz/fuzz_model_file.cpp, scripts/fuzz.sh)
that crashed the runtime or hit undefined behaviour before the fix named here. Each is loaded
and run the way the fuzz target runs it, in a subprocess that must exit cleanly, and must give
the clear error the fix added (or run, where the bug was undefined behaviour on a valid graph:
those are checked under the sanitizers when scripts/fuzz.sh replays this folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "tests/runtime/fuzz_regressions"

# file -> what loading and running it must print (fuzz_load.py: "ok" or "error: <message>")
EXPECTED = {
    "adaptive_avg_pool_window_blowup": "grows one dim while it shrinks the other",  # a 10 s hang before
    "batch_norm_backward_sizes": "batch_norm_backward: grad_output has 24 elements, expected 8216",
    "batch_norm_output_size": "batch_norm: output has 60 elements, expected 15360",
    "bool_constant_byte": "bool constant 'const' holds byte 255 at file offset 896",  # read as bool (UBSan)
    "conv2d_attr_overflow": "stride, padding and dilation must be at most 16777216, got 6701356245527298048",
    "cumsum_output_size": "cumsum: output has 12 elements, expected 194292",
    "embedding_output_size": "embedding: output has 18 elements, expected 284178",
    "empty_tensor_huge_dims": "value 'neg' has dims beyond the memory limit",
    "exp_of_nan": "ok",                 # float(NaN) -> int in vm::exp (UBSan)
    "float_attr_inf_as_int": "ok",      # an inf float attribute converted to int64 (UBSan)
    "group_norm_backward_sizes": "group_norm_backward: grad_output has 24 elements, expected 6168",
    "index_select_output_shape": "index_select(): output shape mismatch at dim 0",
    "int_sum_overflow": "ok",           # int64 sum overflowed its int64 accumulator (UBSan)
    "interpolate_nan_scale": "ok",      # NaN source index converted to int64 (UBSan)
    "linspace_int_out_of_range": "linspace: value 5.53402e+19 does not fit int32",  # float -> int UB before
    "layer_norm_backward_sizes": "layer_norm_backward: grad_output has 0 elements, expected 12",
    "masked_fill_value_out_of_range": "attribute #0 = 562949953421312 does not fit the tensor's integer type",
    "max_pool_output_size_blowup": "max_pool2d: output 65538x2 does not match the window over input 1280x5",  # 2.4 s
    "max_values_output_size": "max/min: values output must have the input's dtype and 15 elements, got 0",
    "mean_output_size": "reduce: output has 4 elements, expected 29029",
    "nll_loss_backward_sizes": "nll_loss_backward: grad_input has 12 elements, expected 6924",
    "one_hot_output_size": "one_hot: output has 12 elements, expected 72057594037927948",
    "pad_size_overflow": "pad: padding (8214566819835412482, 7309449296456213760) at dim 2 is too large",
    "pad_value_out_of_range": "attribute #2 = 2.46377e+180 does not fit an integer tensor",
    "permute_repeated_dim": "permute: dim 1 repeats in the permutation",  # read past its input (ASan)
    "repeat_size_overflow": "repeat(): output shape mismatch",
    "roll_dim_truncated": "roll(): dim 167503724544 out of range",
    "sdpa_output_size": "scaled_dot_product_attention: output has 6 elements, expected 99078",
    "slice_range_overflow": "slice: range out of bounds",
    "softmax_output_size": "softmax: output has 0 elements, expected 13824",
    "sort_dim_out_of_range": "sort(): dim 6815745 out of range",
}


def test_every_regression_file_is_listed():
    assert sorted(p.stem for p in FILES.glob("*.fwm")) == sorted(EXPECTED)


def test_fuzzer_findings_fail_cleanly():
    names = sorted(EXPECTED)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "tests/runtime/fuzz_load.py"), "--harness",
                           *(str(FILES / f"{n}.fwm") for n in names)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, (f"crashed (exit {proc.returncode}) on {names[len(lines)]}\n"
                                  f"{proc.stderr[-2000:]}")
    for name, line in zip(names, lines):
        want = EXPECTED[name]
        if want == "ok":
            assert line == "ok", f"{name}: {line}"
        else:
            assert line.startswith("error:") and want in line, f"{name}: {line}"
