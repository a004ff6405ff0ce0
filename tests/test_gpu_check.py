"""The GPU check's dry run: every step on the CPU with tiny sizes.

``benchmarks/gpu_check.py`` runs only when a GPU is lent, which is rare; this
runs the same command on the CPU so that it cannot rot in between. It runs
the script as a user does, in a subprocess, since tests never import the
benchmarks.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
STEPS = [
    "tests",
    "throughput",
    "fit_vs_loop",
    "transform",
    "seed_conv",
    "dense_axes",
    "conv_fashion",
]


def gpu_check(*args, cwd=REPO):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def positive_numbers(value):
    if isinstance(value, dict):
        return [x for v in value.values() for x in positive_numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in positive_numbers(v)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [value]
    return []


def test_dry_run_measures_every_step(tmp_path):
    proc = gpu_check("--device", "cpu", "--quick", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "gpu_check.json",
        "gpu_check.md",
        "gpu_check_pytest.log",
    ]
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert list(result["steps"]) == STEPS
    env = result["environment"]
    assert env["device"] == "cpu"
    assert env["torch"] == torch.__version__
    assert {"skorch", "scikit-learn", "numpy", "cuda", "gpu"} <= set(env)

    steps = result["steps"]
    # On a CPU every CUDA test skips, and the log says so.
    assert steps["tests"]["passed"] is True
    assert "skipped" in steps["tests"]["summary"]
    assert "needs a CUDA device" in (tmp_path / "gpu_check_pytest.log").read_text()
    assert [r["precision"] for r in steps["throughput"]] == ["float32", "bfloat16"]
    assert steps["fit_vs_loop"]["median_ratio"] > 0
    assert [r["method"] for r in steps["transform"]][0] == "transform"
    assert steps["seed_conv"]["speedup"] == pytest.approx(
        steps["seed_conv"]["tutorial_loop_epoch_s"] / steps["seed_conv"]["skae_epoch_s"]
    )
    axes = steps["dense_axes"]
    assert [(r["learning_rate"], r["input_axes"] > 0) for r in axes] == [
        ("adaptive", False),
        ("adaptive", True),
        ("one_cycle", True),
    ]
    assert all(r["epochs"] == 2 and r["skae_over_pca"] > 0 for r in axes)
    fashion = steps["conv_fashion"]
    assert [r["k"] for r in fashion] == [2, 8, 32]
    for row in fashion:
        assert row["skae_over_pca"] == pytest.approx(row["skae_mse"] / row["pca_mse"])
        assert row["epochs"] == 2
    numbers = positive_numbers(steps)
    assert numbers and all(math.isfinite(x) and x >= 0 for x in numbers)

    markdown = (tmp_path / "gpu_check.md").read_text()
    assert "dry run" in markdown
    assert "| k | data | skae_mse | pca_mse |" in markdown


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")
def test_cuda_without_a_gpu_says_how_to_dry_run(tmp_path):
    proc = gpu_check("--device", "cuda", "--out", str(tmp_path))
    assert proc.returncode == 1
    assert (
        "gpu_check: --device cuda, but torch sees no CUDA device; use --device cpu "
        "--quick for a dry run." in proc.stderr
    )
