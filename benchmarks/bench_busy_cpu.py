"""Busy CPU: how much slower is a fit when other processes share the cores?

A notebook beside other work, a search with ``n_jobs``, CI: the cores are
often shared. PyTorch's CPU threads wait for each other by spinning, so a
training loop on several threads can stall when one of them is descheduled.
This times a default digits fit (``AutoencoderTransformer(n_components=8)``,
a fixed number of epochs, the weights averaged as with early stopping) on a
quiet machine and beside ``--competitors`` processes that keep one core busy
each, and a plain PyTorch loop of the same network, batches and epochs on
torch's default thread count, beside it. The slowdown is busy seconds over
quiet seconds, the median over ``--repeats`` (5) alternating runs. The
plain loop runs a quarter of the epochs: on an Intel Xeon with two cores,
beside two busy processes, its 40-epoch runs took over
a minute each (25 times their quiet time, against 7 times for 10 epochs),
so five repeats of them would take a quarter of an hour; its slowdown over
the shorter run understates the collapse.

Command: ``python -m benchmarks.bench_busy_cpu`` (about 3 minutes on two CPU
cores, which must be otherwise idle for the quiet runs); ``--quick``: fewer
epochs and repeats; ``--set key=value`` changes a parameter of skae's fit,
e.g. ``--set ema_decay=0`` (without averaging the weights). Writes
``benchmarks/results/bench_busy_cpu_digits.{json,md}``
(``--quick``, ``--competitors``, ``--repeats`` or ``--set``:
``bench_quick_output/``).
"""

import argparse
import multiprocessing
import os
import statistics
import time
import warnings

import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from benchmarks._common import (
    add_set_argument,
    default_out,
    hand_written_fit,
    markdown_table,
    parse_overrides,
    positive_int,
    timed_fit,
    writable_folder,
    write_results,
)
from skae import AutoencoderTransformer


def burn(stop):
    """Keep one core busy until ``stop`` is set."""
    while not stop.is_set():
        pass


class Competitors:
    """``n`` processes that each keep a core busy, while the block runs."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        context = multiprocessing.get_context("spawn")
        self.stop = context.Event()
        self.processes = [
            context.Process(target=burn, args=(self.stop,), daemon=True)
            for _ in range(self.n)
        ]
        for process in self.processes:
            process.start()
        time.sleep(1.0)  # let them reach full speed
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for process in self.processes:
            process.join()


def skae_model(epochs, **overrides):
    params = {
        "n_components": 8,
        # A fixed number of epochs; the weights averaged as a default fit,
        # which stops early, averages them (ema_decay='auto').
        "early_stopping": False,
        "ema_decay": 0.99,
        # The hand-written loop's rate; 'auto' picks it at fit time.
        "learning_rate_init": 1e-3,
        "max_iter": epochs,
        "random_state": 0,
        "device": "cpu",
    }
    return AutoencoderTransformer(**{**params, **overrides})


def plain_loop(X, epochs, batch_size):
    """The same network, batches and epochs, trained the plain PyTorch way."""
    model = skae_model(epochs).set_params(batch_size=batch_size)
    return hand_written_fit(X, model, epochs, torch.device("cpu"))


def measure(X, epochs, repeats, competitors, overrides):
    # The batch size skae's 'auto' picks for these rows, for the plain loop.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        batch_size = skae_model(1).fit(X).net_.batch_size
    plain_epochs = max(1, epochs // 4)
    # Each method: its epochs and a run that returns its seconds.
    methods = {
        "skae fit": (epochs, lambda: timed_fit(skae_model(epochs, **overrides), X)),
        f"plain loop, {torch.get_num_threads()} torch threads": (
            plain_epochs,
            lambda: plain_loop(X, plain_epochs, batch_size),
        ),
    }
    times = {(name, load): [] for name in methods for load in ("quiet", "busy")}
    for _ in range(repeats):
        for name, (_, run) in methods.items():
            times[name, "quiet"].append(run())
        with Competitors(competitors):
            for name, (_, run) in methods.items():
                times[name, "busy"].append(run())
    records = []
    for name, (n_epochs, _) in methods.items():
        quiet = statistics.median(times[name, "quiet"])
        busy = statistics.median(times[name, "busy"])
        records.append(
            {
                "method": name,
                "epochs": n_epochs,
                "competing_processes": competitors,
                "quiet_s": quiet,
                "busy_s": busy,
                "slowdown": busy / quiet,
            }
        )
        print(records[-1], flush=True)
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--competitors", type=positive_int, default=None, help="default: 2"
    )
    parser.add_argument("--repeats", type=positive_int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=writable_folder, default=None)
    add_set_argument(parser)
    args = parser.parse_args(argv)
    overrides = parse_overrides(
        parser, args.set, AutoencoderTransformer, fixed=("max_iter", "device")
    )
    X = load_digits().data
    epochs = 10 if args.quick else 40
    repeats = args.repeats or (1 if args.quick else 5)
    competitors = args.competitors or 2
    records = measure(X, epochs, repeats, competitors, overrides)
    table = (
        f"Digits ({len(X)} rows), on {os.cpu_count()} CPU cores, "
        f"quiet and beside {competitors} processes that each keep a core "
        "busy (median of alternating runs):\n\n"
        + markdown_table(records, list(records[0]))
    )
    # A run with other settings than the defaults is not the result.
    candidate = (
        args.competitors is not None or args.repeats is not None or bool(overrides)
    )
    out = args.out or default_out(args.quick or candidate)
    print(write_results("bench_busy_cpu_digits", records, table, out))


if __name__ == "__main__":
    main()
