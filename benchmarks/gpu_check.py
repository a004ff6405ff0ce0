"""GPU check: does skae's CUDA path work, and how fast does it train on a GPU?

One command verifies and measures skae on a CUDA machine, in one go, because a
GPU is lent to this project only now and then, for minutes at a time:

1. the CUDA tests and scikit-learn's estimator checks with ``device='cuda'``
   (``pytest -m cuda``), their log saved;
2. dense training throughput (samples per second, float32 and bfloat16) on
   Fashion-MNIST rows held on the device;
3. skae's ``fit`` against a hand-written PyTorch loop of the same network,
   optimizer, batches and epochs (median ratio of alternating runs);
4. ``transform`` rows per second, numpy in and out, beside the bare module;
5. the seed experiment's convolutional autoencoder (3x32x32 -> 128 code,
   three conv+pool and three transposed-conv stages, MSE, Adam, batches of
   64) on CIFAR-shaped rows: skae against the PyTorch tutorial's loop (a
   DataLoader and a per-batch ``.item()``), seconds per epoch;
6. the dense transformer at k = 32 on Fashion-MNIST, on every pixel and on
   the principal axes ``input_components='auto'`` takes on the CPU (it keeps
   every feature on CUDA, unmeasured there), with CUDA's default schedule
   and with the planned run: held-out MSE against PCA's and seconds;
7. the convolutional network (``image_shape=(1, 28, 28)``, otherwise the
   defaults) trained to convergence on Fashion-MNIST at k = 2, 8, 32, one
   process per k, held-out MSE against PCA's.

Command, on the GPU machine (``make gpu-bundle`` first, where there is a
network, and carry ``.gpu-bundle`` with the working tree)::

    make gpu-check GPU_OUT=<folder>

It is sized to finish within 8 minutes on one H200 (the three conv fits
run side by side and each stops after ``--time-limit`` seconds, 200 by
default); the whole check took 5.5 minutes there, the steps before the conv
fits 2 minutes, before step 6 existed (not yet timed on a GPU; each of its
three fits also stops after ``--time-limit`` seconds). It writes three files into the
folder: ``gpu_check.md``, ``gpu_check.json`` and ``gpu_check_pytest.log``
(``benchmarks/results`` by default). The results are rewritten after every
step, so a run cut short keeps what it measured.

Dry run on the CPU with tiny sizes, which the test suite runs so that the
check cannot rot while no GPU is at hand (about a minute)::

    python -m benchmarks.gpu_check --device cpu --quick --out /tmp/gpu_check
"""

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
NAME = "gpu_check"
# skae's own requirements, checked before anything runs so that a machine
# that lacks one fails in the first second with the fix, not minutes later:
# the floors in pyproject.toml (matplotlib aside: only plots import it);
# skorch's own (the bundle carries skorch without its dependencies, and
# skorch imports them at once); pytest and pandas, which the test modules
# import.
REQUIREMENTS = {
    "numpy": "1.24",
    "scipy": "1.6",
    "scikit-learn": "1.6",
    "torch": "2.4",
    "skorch": "1.0",
    "tabulate": "0.7.7",
    "tqdm": "4.14",
    "pytest": "8",
    "pandas": "2.0",
}
FASHION_KS = (2, 8, 32)


def check_requirements():
    """Versions of skae's requirements; raise SystemExit naming what is missing."""
    found, problems = {}, []
    for name, minimum in REQUIREMENTS.items():
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed (skae needs >= {minimum})")
            continue
        found[name] = version
        if _version_tuple(version) < _version_tuple(minimum):
            problems.append(f"{name} {version} is installed, skae needs >= {minimum}")
    if problems:
        raise SystemExit(
            "gpu_check: "
            + "; ".join(problems)
            + ". On a machine without network access, bring wheels: run "
            "'make gpu-bundle' where pip works (add the package to GPU_WHEELS) "
            "and carry .gpu-bundle with the working tree."
        )
    return found


def _version_tuple(version):
    parts = []
    for part in version.split("+")[0].split("."):
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def environment(device, versions):
    import torch

    info = {
        "device": str(device),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        **versions,
        "cuda": torch.version.cuda,
        "gpu": None,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["cudnn"] = torch.backends.cudnn.version()
    return info


class Report:
    """The results of one run, written out again after every step."""

    def __init__(self, out, env, quick):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.data = {"environment": env, "quick": quick, "steps": {}}

    def add(self, step, result):
        self.data["steps"][step] = result
        print(f"[{step}] {json.dumps(result, default=str)}", flush=True)
        self.write()

    def write(self):
        (self.out / f"{NAME}.json").write_text(
            json.dumps(self.data, indent=2, default=str) + "\n"
        )
        (self.out / f"{NAME}.md").write_text(render_markdown(self.data))


def render_markdown(data):
    env = data["environment"]
    lines = [
        "# GPU check",
        "",
        f"`python -m benchmarks.gpu_check --device {env['device']}"
        + (" --quick`" if data["quick"] else "`")
        + (" (dry run: tiny sizes, numbers mean nothing)" if data["quick"] else ""),
        "",
        f"Measured on {env['gpu'] or 'the CPU'} ({env['device']}); torch "
        f"{env['torch']} (CUDA {env['cuda']}), skorch {env['skorch']}, "
        f"scikit-learn {env['scikit-learn']}, numpy {env['numpy']}, Python "
        f"{env['python']}, {env['cpu_count']} CPU cores.",
    ]
    steps = data["steps"]
    titles = {
        "tests": "CUDA tests and estimator checks on the device",
        "throughput": "Dense training throughput (Fashion-MNIST rows on the device)",
        "fit_vs_loop": "skae fit / hand-written loop, same network and epochs",
        "transform": "Inference rows per second (784 -> 32, numpy in and out)",
        "seed_conv": "Seed conv autoencoder on CIFAR-shaped rows, seconds per epoch",
        "dense_axes": "Dense transformer at k = 32, every pixel or principal axes",
        "conv_fashion": "Conv autoencoder on Fashion-MNIST, held-out MSE against PCA",
    }
    for step, title in titles.items():
        if step not in steps:
            continue
        result = steps[step]
        lines += ["", f"## {title}", ""]
        rows = result if isinstance(result, list) else [result]
        columns = list(dict.fromkeys(key for row in rows for key in row))
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "---|" * len(columns))
        for row in rows:
            lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


# ---------------------------------------------------------------- the steps


def run_tests(device, out, quick):
    """``pytest -m cuda``: the CUDA tests, estimator checks on the device."""
    log = Path(out) / f"{NAME}_pytest.log"
    command = [sys.executable, "-m", "pytest", "tests", "-m", "cuda", "-q", "-rs"]
    command += ["-p", "no:cacheprovider"]
    start = time.perf_counter()
    proc = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, check=False
    )
    log.write_text(proc.stdout + proc.stderr)
    summary = next(
        (line for line in reversed(proc.stdout.splitlines()) if " in " in line), ""
    )
    # pytest exits 5 when everything was deselected or skipped: on a CPU
    # every CUDA test skips, which is the dry run's expected outcome.
    ok = proc.returncode == 0 or (device.type == "cpu" and proc.returncode == 5)
    return {
        "command": " ".join(command[1:]),
        "exit_code": proc.returncode,
        "passed": ok,
        "summary": summary.strip("= "),
        "seconds": round(time.perf_counter() - start, 1),
    }


def fashion_rows(data_home, quick, subset="train"):
    """Fashion-MNIST rows; in a quick run without the files, random ones."""
    from skae import fetch_fashion_mnist

    n = {"train": 2000, "test": 500}[subset] if quick else None
    try:
        X = fetch_fashion_mnist(
            data_home=data_home, subset=subset, download_if_missing=False
        ).data
        source = "Fashion-MNIST"
    except OSError:
        if not quick:
            raise SystemExit(
                "gpu_check: Fashion-MNIST not found. Carry its four IDX files "
                "(make gpu-bundle copies them into .gpu-bundle/fashion-mnist) "
                "and pass --data-home, or install dataset-fashion-mnist."
            ) from None
        rng = np.random.default_rng(0 if subset == "train" else 1)
        X = rng.random((n, 784), dtype=np.float32)
        source = "random, Fashion-MNIST-shaped"
    return (X[:n] if n else X), source


def dense_model(device, epochs, **params):
    """The default dense network, trained for exactly ``epochs`` epochs."""
    from benchmarks._common import loop_matched_model

    return loop_matched_model(epochs, device, n_components=32, batch_size=256, **params)


def fit_quietly(model, X):
    """Fit ``model``, without the ConvergenceWarning a fixed epoch count gives."""
    from benchmarks._common import timed_fit

    return timed_fit(model, X)


def epoch_seconds(model):
    """Median duration of the epochs after the first (which warms up)."""
    durations = model.net_.history[:, "dur"]
    return statistics.median(durations[1:] if len(durations) > 1 else durations)


def throughput(X, device, quick):
    """Training samples per second of the default dense network."""
    epochs = 3 if quick else 6
    records = []
    for precision in ("float32", "bfloat16"):
        model = dense_model(device, epochs, precision=precision)
        fit_s = fit_quietly(model, X)
        seconds = epoch_seconds(model)
        records.append(
            {
                "precision": precision,
                "rows": len(X),
                "epochs": epochs,
                "epoch_s": seconds,
                "samples_per_s": len(X) / seconds,
                "fit_s": fit_s,
                "graph_replays": model.net_.graph_replays_,
                "goal": ">= 1,000,000 samples/s",
            }
        )
    return records


def fit_vs_loop(X, device, quick):
    """Median of skae's fit time over the hand-written loop's, runs alternating."""
    from benchmarks._common import hand_written_fit

    epochs, pairs = (2, 2) if quick else (10, 3)
    ratios, fits, loops = [], [], []
    for _ in range(pairs):
        model = dense_model(device, epochs)
        fits.append(fit_quietly(model, X))
        loops.append(hand_written_fit(X, model, epochs, device))
        ratios.append(fits[-1] / loops[-1])
    return {
        "rows": len(X),
        "epochs": epochs,
        "pairs": pairs,
        "skae_fit_s": statistics.median(fits),
        "hand_loop_s": statistics.median(loops),
        "median_ratio": statistics.median(ratios),
        "goal": "<= 1.10",
    }


def transform_rate(X, device, quick):
    """Rows per second of ``transform`` (numpy to numpy) and of the bare module."""
    import torch

    model = dense_model(device, 1)
    fit_quietly(model, X[:2000])
    module = model.module_.eval()
    rows = torch.from_numpy(X).to(device)
    repeats = 3 if quick else 7

    def bare_module():
        with torch.inference_mode():
            module.encode(rows)
        if device.type == "cuda":
            torch.cuda.synchronize()

    records = []
    for method, call in {
        "transform": lambda: model.transform(X),
        "module.encode (rows on device)": bare_module,
    }.items():
        call()  # warm up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        records.append(
            {
                "method": method,
                "rows": len(X),
                "rows_per_s": len(X) / statistics.median(times),
            }
        )
    return records


def seed_conv(device, quick):
    """The seed's CIFAR autoencoder: skae against the tutorial loop, per epoch."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from benchmarks._common import loop_matched_model
    from skae import ConvAutoencoder

    n_rows, epochs = (256, 2) if quick else (50000, 3)
    X = np.random.default_rng(0).random((n_rows, 3 * 32 * 32), dtype=np.float32)

    torch.manual_seed(0)
    network = ConvAutoencoder(
        (3, 32, 32), 128, channels=(16, 32, 64), out_activation="sigmoid"
    ).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    criterion = torch.nn.MSELoss()
    loader = DataLoader(TensorDataset(torch.from_numpy(X)), batch_size=64, shuffle=True)
    tutorial = []
    for _ in range(epochs):
        start = time.perf_counter()
        running_loss = 0.0
        for (batch,) in loader:
            batch = batch.to(device)
            loss = criterion(network(batch), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        tutorial.append(time.perf_counter() - start)

    model = loop_matched_model(
        epochs,
        device,
        n_components=128,
        image_shape=(3, 32, 32),
        conv_channels=(16, 32, 64),
        activation="relu",
        batch_size=64,
    )
    fit_quietly(model, X)
    tutorial_s = statistics.median(tutorial[1:])
    skae_s = epoch_seconds(model)
    return {
        "rows": n_rows,
        "epochs": epochs,
        "tutorial_loop_epoch_s": tutorial_s,
        "skae_epoch_s": skae_s,
        "speedup": tutorial_s / skae_s,
        "graph_replays": model.net_.graph_replays_,
        "goal": "skae >= 10x faster",
    }


def time_limit(seconds):
    """A skorch callback that stops training once ``seconds`` have passed.

    Built here because skorch is imported only after the requirements check.
    """
    from skorch.callbacks import Callback

    class TimeLimit(Callback):
        def __init__(self, seconds):
            self.seconds = seconds

        def on_train_begin(self, net, **kwargs):
            self.start_ = time.perf_counter()

        def on_epoch_end(self, net, **kwargs):
            if time.perf_counter() - self.start_ > self.seconds:
                net.request_stop()

    return TimeLimit(seconds)


def fashion_transformer(X_train, X_test, device, quick, limit_s, **params):
    """Fit the transformer as the Fashion-MNIST steps do, with ``params``.

    Returns the fitted model, its fit seconds and its held-out MSE on
    ``X_test``: two epochs in a quick run, else ``max_iter='auto'``; seed 0;
    stopped after ``limit_s`` seconds.
    """
    from skae import AutoencoderTransformer

    model = AutoencoderTransformer(
        max_iter=2 if quick else "auto",
        device=device,
        random_state=0,
        callbacks=[("time_limit", time_limit(limit_s))],
        **params,
    )
    fit_s = fit_quietly(model, X_train)
    return model, fit_s, held_out_mse(model, None, X_test)


def held_out_mse(model, X_train, X_test):
    """Mean squared error of ``model``'s reconstruction of ``X_test``.

    ``model`` is fitted on ``X_train`` first, unless that is None (fitted
    already).
    """
    if X_train is not None:
        model.fit(X_train)
    reconstruction = model.inverse_transform(model.transform(X_test))
    return float(np.mean((reconstruction - X_test) ** 2))


def dense_axes(device, data_home, quick, limit_s):
    """The dense transformer at k = 32 on every pixel and on principal axes.

    ``input_components='auto'`` keeps every feature on CUDA, where it was
    not measured; these fits say whether the axes pay there too: CUDA's
    default schedule (adaptive, graphed) on every pixel and on the axes
    ``'auto'`` takes on the CPU, and the planned run on them (one cycle,
    eager). Held-out MSE against PCA's, seconds, epochs.
    """
    from sklearn.decomposition import PCA

    from skae._units import input_axes

    k = 32
    X_train, source = fashion_rows(data_home, quick, "train")
    X_test, _ = fashion_rows(data_home, quick, "test")
    pca_mse = held_out_mse(PCA(n_components=k, random_state=0), X_train, X_test)
    axes = input_axes(X_train, "auto", k, auto=True)
    # Random rows (a dry run without the data) have no leading axes.
    n_axes = 4 * k if axes is None else len(axes)
    records = []
    for input_components, learning_rate in (
        (None, "auto"),
        (n_axes, "auto"),
        (n_axes, "one_cycle"),
    ):
        model, fit_s, skae_mse = fashion_transformer(
            X_train,
            X_test,
            device,
            quick,
            limit_s,
            n_components=k,
            input_components=input_components,
            learning_rate=learning_rate,
        )
        records.append(
            {
                "input_axes": input_components or 0,
                "learning_rate": model.training_plan_["learning_rate"],
                "batch_size": model.training_plan_["batch_size"],
                "data": source,
                "skae_over_pca": skae_mse / pca_mse,
                "epochs": model.n_iter_,
                "best_epoch": model.best_epoch_,
                "fit_s": fit_s,
            }
        )
    return records


def conv_fashion_one(k, device_name, data_home, quick, limit_s):
    """Fit the conv network and PCA at ``k``; return the held-out MSE of each."""
    import torch
    from sklearn.decomposition import PCA

    device = torch.device(device_name)
    X_train, source = fashion_rows(data_home, quick, "train")
    X_test, _ = fashion_rows(data_home, quick, "test")
    pca_mse = held_out_mse(PCA(n_components=k, random_state=0), X_train, X_test)
    model, fit_s, skae_mse = fashion_transformer(
        X_train, X_test, device, quick, limit_s, n_components=k, image_shape=(1, 28, 28)
    )
    plan = model.training_plan_
    # A planned run ends as planned; another converged if it stopped early.
    stopped_early = plan["learning_rate"] == "one_cycle" or (
        model.n_iter_ < plan["max_iter"]
        and model.n_iter_ - model.best_epoch_ >= model.n_iter_no_change
    )
    return {
        "k": k,
        "data": source,
        "skae_mse": skae_mse,
        "pca_mse": pca_mse,
        "skae_over_pca": skae_mse / pca_mse,
        "epochs": model.n_iter_,
        "best_epoch": model.best_epoch_,
        "converged": bool(stopped_early),
        "fit_s": fit_s,
    }


def conv_fashion(device, data_home, quick, limit_s):
    """One process per k, in parallel: a small conv net does not fill a GPU."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(FASHION_KS), mp_context=context) as pool:
        futures = [
            pool.submit(conv_fashion_one, k, str(device), data_home, quick, limit_s)
            for k in FASHION_KS
        ]
        return [future.result() for future in futures]


STEPS = (
    "tests",
    "throughput",
    "fit_vs_loop",
    "transform",
    "seed_conv",
    "dense_axes",
    "conv_fashion",
)


def _device(text):
    """argparse type of ``--device``: a torch device name."""
    import torch

    try:
        torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"not a torch device: {text!r}") from None
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", default="cuda", type=_device, help="'cuda' (default) or 'cpu'"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: a dry run of every step"
    )
    parser.add_argument("--out", default=str(RESULTS), help="folder for the results")
    parser.add_argument(
        "--data-home", default=None, help="folder holding Fashion-MNIST's IDX files"
    )
    parser.add_argument(
        "--steps", nargs="+", choices=STEPS, default=list(STEPS), help="steps to run"
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=200.0,
        help="seconds each Fashion-MNIST fit of the last two steps may train "
        "(default 200)",
    )
    args = parser.parse_args(argv)

    versions = check_requirements()
    import torch

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "gpu_check: --device cuda, but torch sees no CUDA device; "
            "use --device cpu --quick for a dry run."
        )
    report = Report(args.out, environment(device, versions), args.quick)
    report.write()
    X = None
    for step in args.steps:
        if step in ("throughput", "fit_vs_loop", "transform") and X is None:
            X, source = fashion_rows(args.data_home, args.quick)
            report.data["environment"]["dense_data"] = source
        if step == "tests":
            report.add(step, run_tests(device, args.out, args.quick))
        elif step == "throughput":
            report.add(step, throughput(X, device, args.quick))
        elif step == "fit_vs_loop":
            report.add(step, fit_vs_loop(X, device, args.quick))
        elif step == "transform":
            report.add(step, transform_rate(X, device, args.quick))
        elif step == "seed_conv":
            report.add(step, seed_conv(device, args.quick))
        elif step == "dense_axes":
            report.add(
                step,
                dense_axes(device, args.data_home, args.quick, args.time_limit),
            )
        else:
            report.add(
                step,
                conv_fashion(device, args.data_home, args.quick, args.time_limit),
            )
    print(f"wrote {report.out / (NAME + '.md')}", flush=True)
    tests = report.data["steps"].get("tests")
    if tests is not None and not tests["passed"]:
        raise SystemExit(f"gpu_check: the CUDA tests failed: {tests['summary']}")


if __name__ == "__main__":
    main()
