"""Helpers shared by the benchmark scripts: devices, timing and result files."""

import argparse
import ast
import json
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.exceptions import ConvergenceWarning

import skae
from skae._validation import resolve_device

RESULTS = Path(__file__).parent / "results"
# --quick runs check that a script works; they must not overwrite the
# committed results, which are full runs.
QUICK_OUT = Path("bench_quick_output")


def default_out(quick):
    """Where a run writes unless told otherwise."""
    return QUICK_OUT if quick else RESULTS


def add_set_argument(parser):
    """Add ``--set KEY=VALUE ...``: parameters of the benchmarked estimator.

    :func:`parse_overrides` turns them into keyword arguments; a run with
    any writes to ``bench_quick_output/``, never over the results.
    """
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="estimator parameters instead of its defaults (a candidate "
        "setting, written to bench_quick_output/)",
    )


def _key_value(text):
    """argparse type of ``--set``: ``KEY=VALUE`` with a parameter name for KEY."""
    key, equals, _ = text.partition("=")
    if not equals or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return text


def positive_int(text):
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def writable_folder(text):
    """argparse type of ``--out``: a folder, made here if need be, to write into.

    Made and checked before the run rather than when its results are
    written, which would throw away minutes of measurements.
    """
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise argparse.ArgumentTypeError(
            f"cannot make the folder {text!r}: {error.strerror}"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write into the folder {text!r}")
    return path


def device_name(text):
    """argparse type of ``--device``: 'auto', or a torch device this machine has.

    Checked as the estimators check their ``device`` (a CUDA index beyond
    the devices visible, or a device type skae does not train on, is an
    error of the command line, not of the first fit).
    """
    try:
        resolve_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def parse_overrides(parser, items, estimator, fixed=()):
    """``KEY=VALUE`` strings as parameters of ``estimator`` (literals or strings).

    A key that is not one of the estimator's parameters, one in ``fixed``
    (the parameters the benchmark sets itself), or a value the estimator
    rejects is an error of the command line (``parser.error``), before
    anything runs.
    """
    overrides = {}
    names = estimator().get_params()
    for item in items:
        key, text = item.split("=", 1)
        if key not in names:
            parser.error(
                f"--set {key}: not a parameter of {estimator.__name__} "
                f"(its parameters: {', '.join(sorted(names))})"
            )
        if key in overrides:
            parser.error(f"--set {key}: given twice")
        if key in fixed:
            parser.error(
                f"--set {key}: set by this benchmark itself, so it cannot be "
                f"overridden (fixed here: {', '.join(sorted(fixed))})"
            )
        try:
            overrides[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[key] = text
    try:
        # The checks fit would run, without the minutes of work before it;
        # scikit-learn's InvalidParameterError is a ValueError and a TypeError.
        estimator(**overrides)._validate_params()
    except (ValueError, TypeError) as error:
        parser.error(f"--set: {error}")
    return overrides


def format_params(params):
    """``params`` as the code would pass them: ``key=value, ...``."""
    return ", ".join(f"{key}={value!r}" for key, value in params.items())


def machine_info():
    """What the numbers were measured on."""
    cuda = torch.cuda.is_available()
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "skae": skae.__version__,
    }


def command_line():
    """The command that is running, as one would type it."""
    module = Path(sys.argv[0]).stem
    return shlex.join(["python", "-m", f"benchmarks.{module}", *sys.argv[1:]])


def timed_fit(model, X):
    """Fit ``model`` on ``X`` and return the seconds it took.

    A ConvergenceWarning is expected where a benchmark caps ``max_iter``;
    it is silenced so the log shows the results.
    """
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    return time.perf_counter() - start


# The network of the reference loop that *equivalent epochs* count in: the
# transformer's dense default before the fit-cost work (n_features -> 512 ->
# 256 -> 128 -> k and back, SiLU), trained by Adam at 1e-3 in batches of 256.
REFERENCE_LAYERS = (512, 256, 128)


def reference_epoch_seconds(X, k, min_epochs=3, min_seconds=10.0, device="cpu"):
    """Median wall and CPU seconds of one epoch of the reference loop on ``X``.

    The unit of *equivalent epochs*: a fit's seconds over these, timed in
    the same run, cost the same on a fast machine and a slow one. After a
    warm-up epoch, at least ``min_epochs`` epochs and ``min_seconds`` of
    them: a digits epoch takes a twentieth of a second, too short to time
    alone. ``k`` is the code's width (it changes the cost little).
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    data = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(device)
    torch.manual_seed(0)
    module = skae.DenseAutoencoder(X.shape[1], k, REFERENCE_LAYERS, "silu").to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    criterion = torch.nn.MSELoss()
    times, cpu_times = [], []
    while len(times) <= min_epochs or sum(times[1:]) < min_seconds:
        start, cpu_start = time.perf_counter(), time.process_time()
        order = torch.randperm(len(data), generator=generator).to(device)
        for i in range(0, len(data), 256):
            batch = data[order[i : i + 256]]
            optimizer.zero_grad()
            loss = criterion(module(batch), batch)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return statistics.median(times[1:]), statistics.median(cpu_times[1:])


def write_results(name, records, table, out_dir=RESULTS):
    """Write ``records`` as JSON and ``table`` (markdown) under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = command_line()
    payload = {"command": command, "machine": machine_info(), "records": records}
    (out_dir / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    machine = payload["machine"]
    header = (
        f"`{command}`, measured on {machine['cpu_count']} CPU cores "
        f"(torch using {machine['torch_threads']} thread(s))"
        f"{', GPU ' + machine['gpu'] if machine['gpu'] else ''}; "
        f"torch {machine['torch']}, scikit-learn {machine['sklearn']}, "
        f"skae {machine['skae']}.\n\n"
    )
    (out_dir / f"{name}.md").write_text(header + table + "\n")
    return out_dir / f"{name}.md"


def markdown_table(rows, columns):
    """Render ``rows`` (dicts) as a markdown table over ``columns``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            cells.append(f"{value:.4g}" if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_model_units(X, X_fit):
    """``X`` centred on ``X_fit``'s mean and divided by its root mean square.

    The units skae trains in; computed here rather than read from the fitted
    model, whose conversion is private.
    """
    centred = X_fit - X_fit.mean(0)
    return ((X - X_fit.mean(0)) / np.sqrt(np.mean(centred**2))).astype(np.float32)


def hand_written_fit(X, model, epochs, device):
    """Train ``model``'s dense network the plain PyTorch way; return seconds.

    The same network, optimizer, rate and batch size (``model``'s
    ``learning_rate_init`` and ``batch_size``, numbers) and epochs as skae's
    fit, with no validation, scheduling or early stopping:
    what the estimator's fit is compared with.
    """
    start = time.perf_counter()
    X_model = to_model_units(X, X)
    data = torch.from_numpy(X_model).to(device)
    torch.manual_seed(0)
    module = skae.DenseAutoencoder(
        X.shape[1], model.n_components, model.hidden_layer_sizes, model.activation
    ).to(device)
    optimizer = torch.optim.Adam(
        module.parameters(), lr=model.learning_rate_init, weight_decay=model.alpha
    )
    criterion = torch.nn.MSELoss()
    batch_size = model.batch_size
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        module.train()
        order = torch.randperm(len(data), generator=generator).to(device)
        total = torch.zeros((), device=device)
        for i in range(0, len(data), batch_size):
            batch = data[order[i : i + batch_size]]
            optimizer.zero_grad()
            loss = criterion(module(batch), batch)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(batch)
        total.item()  # one sync per epoch, as skae logs the epoch loss
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def loop_matched_model(epochs, device, **params):
    """An AutoencoderTransformer that trains as :func:`hand_written_fit` does.

    A random start, every feature (no input axes), every row in every
    epoch (no hold-out, no early stop) and a constant rate for exactly
    ``epochs`` epochs, so that the two
    compare like for like; ``params`` set the network and batch size.
    """
    settings = {
        "init": "random",
        "input_components": None,
        "early_stopping": False,
        "learning_rate": "constant",
        "learning_rate_init": 1e-3,
        "max_iter": epochs,
        "n_iter_no_change": epochs,
        "tol": 0.0,
        "random_state": 0,
        "device": device,
    }
    return skae.AutoencoderTransformer(**{**settings, **params})
