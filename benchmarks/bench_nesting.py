"""How much does a nested code cost in itself, trained with every advantage?

``AutoencoderTransformer(ordered=True)`` makes the first ``k`` units of one
code a ``k``-component code; ``bench_ordered`` measures how much more its
prefixes err than networks fitted at each ``k``. This benchmark asks how
much of that gap any nested code pays, whatever trains it. A hand-written
PyTorch loop trains one encoder to a 32-unit code and a decoder of its own
for each width ``k`` in 1, 2, 8, 16 and 32, on the code's first ``k``
units. Every batch passes through every decoder. Width ``k``'s loss is
divided by the held-out loss of the same layers fitted at ``k`` alone,
so that no width is given up for another, and training stops on the worst
of those ratios. An ordered skae model has one decoder for every width
and knows no separate fit's error, so its prefixes cannot expect to come
closer to the fits at ``k`` than these.

The nested network and the fits at each ``k`` are alike: skae's
:class:`~skae.DenseAutoencoder` layers (``n_features -> 512 -> 256 -> 128
-> k`` and back, SiLU, no linear path), Adam at 1e-3, batches of 128, the
rows in skae's model units, 10% of the training rows held out, and at most
300 epochs, stopping after 20 without a better held-out loss and keeping
the best epoch's weights. MSE is on the test rows, in model units (the
ratios are those in data units). The same rows as ``bench_ordered``: the
digits split by ``train_test_split(test_size=0.25, random_state=0)``, and
Fashion-MNIST's first 10,000 training and 2,000 test rows, scaled to
[0, 1].

Commands and their durations on 2 CPU cores of an Intel Xeon (one torch
thread; the committed results, measured at 213b43c and d4083e7)::

    python -m benchmarks.bench_nesting --dataset digits         # ~1.6 min
    python -m benchmarks.bench_nesting --dataset fashion_mnist  # ~22 min

``--seeds`` (default 3 on the digits, 2 on Fashion-MNIST, for time) sets
how many seeds, 0 upwards, start the networks and shuffle the batches; the
table holds their means, and each seed's values are in the JSON. Results:
``benchmarks/results/bench_nesting_<dataset>.{json,md}`` (``--quick``, 3
epochs and one seed, or ``--seeds``: ``bench_quick_output/``).
"""

import argparse
import copy
import time

import numpy as np
import torch
from sklearn.model_selection import train_test_split

import skae
from benchmarks._common import (
    REFERENCE_LAYERS,
    default_out,
    markdown_table,
    positive_int,
    to_model_units,
    writable_folder,
    write_results,
)
from benchmarks.bench_ordered import KS, N_TRAIN, WIDTH, load

WIDTHS = (*KS, WIDTH)
BATCH_SIZE = 128
MAX_EPOCHS = 300
PATIENCE = 20
SEEDS = {"digits": 3, "fashion_mnist": 2}
# The columns averaged over the seeds.
MEANS = (
    "separate_mse",
    "nested_mse",
    "nested_over_separate",
    "separate_epochs",
    "nested_epochs",
)


def fit(data, code_width, widths, weights, seed, max_epochs):
    """Train one encoder and a decoder per width; return their losses.

    ``data`` holds the training, held-out and test rows as tensors; the
    decoder of width ``k`` decodes the first ``k`` of ``code_width`` code
    units, and its loss is multiplied by ``weights[k]`` in training and in
    the early-stopping criterion (the worst weighted held-out loss).
    Returns the test and held-out MSE of each width at the best epoch, and
    the epochs run.
    """
    train, valid, test = data
    n_features = train.shape[1]

    def layers(k):
        return skae.DenseAutoencoder(n_features, k, REFERENCE_LAYERS, "silu")

    torch.manual_seed(seed)
    encoder = layers(code_width).encoder
    decoders = torch.nn.ModuleDict({str(k): layers(k).decoder for k in widths})
    model = torch.nn.ModuleDict({"encoder": encoder, "decoders": decoders})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)

    def losses(rows):
        codes = encoder(rows)
        return {
            k: torch.mean((decoders[str(k)](codes[:, :k]) - rows) ** 2) for k in widths
        }

    def evaluated(rows):
        model.eval()
        with torch.no_grad():
            return {k: value.item() for k, value in losses(rows).items()}

    best, best_state, best_valid, since, epochs = np.inf, None, None, 0, 0
    while epochs < max_epochs and since < PATIENCE:
        epochs += 1
        model.train()
        for batch in torch.randperm(len(train), generator=generator).split(BATCH_SIZE):
            loss = sum(weights[k] * value for k, value in losses(train[batch]).items())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        valid_mse = evaluated(valid)
        held = max(weights[k] * value for k, value in valid_mse.items())
        if held < best:
            best, best_valid, since = held, valid_mse, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since += 1
    model.load_state_dict(best_state)
    return evaluated(test), best_valid, epochs


def run(dataset, seeds, max_epochs):
    """Per seed and width: the test MSE of the fit at ``k`` and of the nested."""
    X_train, X_test = load(dataset, N_TRAIN.get(dataset))
    X_fit, X_valid = train_test_split(X_train, test_size=0.1, random_state=0)
    data = [
        torch.from_numpy(to_model_units(X, X_fit)) for X in (X_fit, X_valid, X_test)
    ]
    records = []
    for seed in range(seeds):
        start = time.perf_counter()
        separate = {}
        for k in WIDTHS:
            test_mse, valid_mse, epochs = fit(data, k, (k,), {k: 1.0}, seed, max_epochs)
            separate[k] = {"test": test_mse[k], "valid": valid_mse[k], "epochs": epochs}
        separate_s = time.perf_counter() - start
        # Width k weighs one over the held-out loss of the fit at k (its
        # early-stopping rows, never the test rows).
        weights = {k: 1.0 / separate[k]["valid"] for k in WIDTHS}
        start = time.perf_counter()
        nested, _, nested_epochs = fit(data, WIDTH, WIDTHS, weights, seed, max_epochs)
        nested_s = time.perf_counter() - start
        print(
            f"seed {seed}: fits at each k {separate_s:.0f} s, nested {nested_s:.0f} s",
            flush=True,
        )
        records += [
            {
                "seed": seed,
                "k": k,
                "separate_mse": separate[k]["test"],
                "nested_mse": nested[k],
                "nested_over_separate": nested[k] / separate[k]["test"],
                "separate_epochs": separate[k]["epochs"],
                "nested_epochs": nested_epochs,
                "separate_fit_s": separate_s,
                "nested_fit_s": nested_s,
            }
            for k in WIDTHS
        ]
    return records


def summary(records):
    """Per width: the means over seeds, and the ratio's least and greatest."""
    rows = []
    for k in WIDTHS:
        mine = [r for r in records if r["k"] == k]
        ratios = [r["nested_over_separate"] for r in mine]
        row = {"k": k, "least": float(min(ratios)), "greatest": float(max(ratios))}
        for key in MEANS:
            row[key] = float(np.mean([r[key] for r in mine]))
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dataset", choices=["digits", "fashion_mnist"], default="digits"
    )
    parser.add_argument("--seeds", type=positive_int, default=None)
    parser.add_argument("--quick", action="store_true", help="3 epochs, one seed")
    parser.add_argument("--out", type=writable_folder, default=None)
    args = parser.parse_args(argv)
    seeds = args.seeds or (1 if args.quick else SEEDS[args.dataset])
    records = run(args.dataset, seeds, 3 if args.quick else MAX_EPOCHS)
    rows = summary(records)
    table = markdown_table(
        rows,
        [
            "k",
            "separate_mse",
            "nested_mse",
            "nested_over_separate",
            "least",
            "greatest",
            "separate_epochs",
            "nested_epochs",
        ],
    )
    fits = [r for r in records if r["k"] == WIDTH]
    lines = [
        table,
        "",
        f"Means over {seeds} seed(s) (least and greatest: of nested_over_separate). "
        "MSE on the test rows in model units. Seconds per seed: the fits at "
        f"each k {np.mean([r['separate_fit_s'] for r in fits]):.0f} s, the "
        f"nested network {np.mean([r['nested_fit_s'] for r in fits]):.0f} s.",
    ]
    out = args.out or default_out(args.quick or args.seeds is not None)
    path = write_results(
        f"bench_nesting_{args.dataset}",
        {"per_seed": records, "per_k": rows},
        "\n".join(lines),
        out,
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
