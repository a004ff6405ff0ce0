"""Speed levers, each measured against its baseline in one process.

Which of PyTorch's speed options skae uses is decided here, by measurement:

- ``channels_last``: the convolutional network (``image_shape=(1, 28, 28)``,
  Fashion-MNIST rows) with its weights, and so its activations, in
  channels-last memory layout against the default (contiguous) layout: time
  of a training epoch (batch 128, Adam) and of inference over the same rows.
  skae uses it for every conv network.
- ``compile``: ``torch.compile`` of the default dense network (784 -> 512 ->
  256 -> 32, linear path) against eager mode: time of a training epoch (batch
  256, Adam), after an untimed first epoch that pays the compilation, whose
  time is reported apart. skae does not use it: see the results.
- ``precision``: ``AutoencoderTransformer`` fits (dense default, 3 epochs)
  with ``precision='bfloat16'`` and ``'float16'`` against ``'float32'``: fit
  time, and the held-out MSE of each.

Runs alternate between baseline and variant; the median of the per-pair time
ratios (variant / baseline, below 1 is faster) is reported. The device is
CUDA when there is one, else the CPU.

``python -m benchmarks.levers [--repeats N] [--device cpu]``; results in
``benchmarks/results/levers_<device>.{json,md}``.
"""

import argparse
import statistics
import time
import warnings

import torch
from sklearn.exceptions import ConvergenceWarning

from benchmarks._common import PREVIOUS_DEFAULTS, RESULTS, markdown_table, write_results
from skae import (
    AutoencoderTransformer,
    ConvAutoencoder,
    DenseAutoencoder,
    fetch_fashion_mnist,
)
from skae._validation import resolve_device


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_epoch(model, optimizer, X, batch_size):
    """One epoch of plain PyTorch training; return its seconds."""
    sync(X.device)
    start = time.perf_counter()
    for i in range(0, len(X), batch_size):
        batch = X[i : i + batch_size]
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(batch), batch)
        loss.backward()
        optimizer.step()
    sync(X.device)
    return time.perf_counter() - start


def infer(model, X, batch_size=4096):
    """Inference over ``X`` in batches; return its seconds."""
    sync(X.device)
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(X), batch_size):
            model.decode(model.encode(X[i : i + batch_size]))
    sync(X.device)
    return time.perf_counter() - start


def alternate(baseline, variant, repeats):
    """Run the two timers in turn; return their times and the median ratio."""
    base_times, variant_times = [], []
    for _ in range(repeats):
        base_times.append(baseline())
        variant_times.append(variant())
    ratios = [v / b for b, v in zip(base_times, variant_times, strict=True)]
    return (
        statistics.median(base_times),
        statistics.median(variant_times),
        statistics.median(ratios),
    )


def channels_last(X, device, repeats):
    """Conv training epoch and inference, channels-last against contiguous."""
    models, optimizers = {}, {}
    for layout in ("contiguous", "channels_last"):
        torch.manual_seed(0)
        model = ConvAutoencoder((1, 28, 28), 32).to(device)
        if layout == "channels_last":
            model = model.to(memory_format=torch.channels_last)
        models[layout] = model
        optimizers[layout] = torch.optim.Adam(model.parameters(), 1e-3)
        train_epoch(model, optimizers[layout], X, 128)  # warm-up

    def epoch(layout):
        return lambda: train_epoch(models[layout], optimizers[layout], X, 128)

    def inference(layout):
        return lambda: infer(models[layout], X)

    records = []
    for what, timer in (("train epoch", epoch), ("inference", inference)):
        base, variant, ratio = alternate(
            timer("contiguous"), timer("channels_last"), repeats
        )
        records.append(
            {
                "lever": "channels_last (conv)",
                "measure": what,
                "baseline_s": base,
                "variant_s": variant,
                "ratio": ratio,
                "note": f"{len(X)} rows",
            }
        )
    return records


def compiled(X, device, repeats):
    """Dense training epoch, torch.compile against eager."""
    models, optimizers = {}, {}
    for mode in ("eager", "compiled"):
        torch.manual_seed(0)
        model = DenseAutoencoder(
            784, 32, hidden_layer_sizes=(512, 256), linear_path=True
        ).to(device)
        if mode == "compiled":
            model.compile()
        models[mode] = model
        optimizers[mode] = torch.optim.Adam(model.parameters(), 1e-3)
    eager_first = train_epoch(models["eager"], optimizers["eager"], X, 256)
    compile_first = train_epoch(models["compiled"], optimizers["compiled"], X, 256)

    def epoch(mode):
        return lambda: train_epoch(models[mode], optimizers[mode], X, 256)

    base, variant, ratio = alternate(epoch("eager"), epoch("compiled"), repeats)
    return [
        {
            "lever": "torch.compile (dense)",
            "measure": "train epoch",
            "baseline_s": base,
            "variant_s": variant,
            "ratio": ratio,
            "note": (
                f"{len(X)} rows; first epoch {compile_first:.1f} s compiled, "
                f"{eager_first:.1f} s eager"
            ),
        }
    ]


def precision(X_train, X_test, device, repeats):
    """Estimator fits in mixed precision against float32."""

    def fit(value):
        def run():
            model = AutoencoderTransformer(
                n_components=32,
                precision=value,
                max_iter=3,
                early_stopping=False,
                random_state=0,
                device=str(device),
                **PREVIOUS_DEFAULTS,
            )
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X_train)
            seconds = time.perf_counter() - start
            errors[value] = -model.score(X_test)
            return seconds

        return run

    errors = {}
    records = []
    for value in ("bfloat16", "float16"):
        base, variant, ratio = alternate(fit("float32"), fit(value), repeats)
        records.append(
            {
                "lever": f"precision='{value}'",
                "measure": "fit (3 epochs)",
                "baseline_s": base,
                "variant_s": variant,
                "ratio": ratio,
                "note": (
                    f"{len(X_train)} rows; held-out MSE {errors[value]:.6g} "
                    f"vs {errors['float32']:.6g} in float32"
                ),
            }
        )
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    data = fetch_fashion_mnist(subset="train").data
    X = torch.from_numpy(data[: args.rows].copy()).to(device)
    X_test = fetch_fashion_mnist(subset="test").data[:2000]
    records = channels_last(X[: args.rows // 2], device, args.repeats)
    records += compiled(X, device, args.repeats)
    records += precision(data[: args.rows], X_test, device, args.repeats)
    for record in records:
        record["device"] = device.type
        print(record, flush=True)
    columns = ["lever", "measure", "baseline_s", "variant_s", "ratio", "note"]
    title = (
        f"Speed levers on {device.type}: median seconds of baseline and variant "
        "over alternating runs, and the median ratio variant / baseline "
        "(below 1 is faster).\n\n"
    )
    path = write_results(
        f"levers_{device.type}",
        records,
        title + markdown_table(records, columns),
        args.out,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
