"""Does VariationalAutoencoder model the data's density better than probabilistic PCA?

For each ``n_components`` it reports, on held-out rows:

- the mean ELBO per row of ``VariationalAutoencoder`` (``loss='mse'``, a
  Gaussian likelihood with a learned variance): a lower bound on the
  log-density of each row in pixel units;
- ``PCA.score``: the exact log-likelihood of probabilistic PCA, in the same
  units. The two are comparable (both densities of the same rows), with one
  caveat: the ELBO is a bound, so the gap understates the VAE;
- reconstruction MSE through the posterior mean, and PCA's.

With ``loss='bce'`` the ELBO is a Bernoulli likelihood of grey levels, a
different quantity: it is not compared with PCA here.

Commands and their durations on 2 CPU cores (one torch thread)::

    python -m benchmarks.bench_vae --dataset digits         # ~1 min
    python -m benchmarks.bench_vae --dataset fashion_mnist  # ~8 min
    python -m benchmarks.bench_vae --quick                  # digits, 20 epochs

``--set key=value`` overrides an estimator parameter, to measure a
candidate setting (written to ``bench_quick_output/``).

Digits: ``train_test_split(test_size=0.25, random_state=0)``, scaled to
[0, 1]; Fashion-MNIST: the published 60k/10k split. Results:
``benchmarks/results/bench_vae_<dataset>.{json,md}`` (``--quick``:
``bench_quick_output/``).
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from benchmarks._common import (
    add_set_argument,
    default_out,
    device_name,
    format_params,
    markdown_table,
    parse_overrides,
    timed_fit,
    writable_folder,
    write_results,
)
from skae import VariationalAutoencoder, fetch_fashion_mnist

KS = (2, 8, 32)
# Capped on Fashion-MNIST, where a fit to convergence takes hours on a CPU,
# to keep `make bench` within its budget; the cap is in the results.
MAX_ITER = {"fashion_mnist": 30}


def load(dataset):
    """Training and test rows in [0, 1]."""
    if dataset == "digits":
        X, _ = load_digits(return_X_y=True)
        return train_test_split(X / 16.0, test_size=0.25, random_state=0)
    return (
        fetch_fashion_mnist(subset="train").data,
        fetch_fashion_mnist(subset="test").data,
    )


def mse(model, X):
    return float(np.mean((X - model.inverse_transform(model.transform(X))) ** 2))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", choices=["digits", "fashion_mnist"], default="digits"
    )
    parser.add_argument(
        "--quick", action="store_true", help="20 epochs, to bench_quick_output/"
    )
    add_set_argument(parser)
    parser.add_argument("--device", type=device_name, default="auto")
    parser.add_argument("--out", type=writable_folder, default=None)
    args = parser.parse_args(argv)
    overrides = parse_overrides(
        parser,
        args.set,
        VariationalAutoencoder,
        fixed=("n_components", "random_state", "device"),
    )
    X_train, X_test = load(args.dataset)
    max_iter = 20 if args.quick else MAX_ITER.get(args.dataset)
    params = {} if max_iter is None else {"max_iter": max_iter}
    params.update(overrides)
    records = []
    for k in KS:
        pca = PCA(n_components=k, random_state=0).fit(X_train)
        vae = VariationalAutoencoder(k, random_state=0, device=args.device, **params)
        fit_s = timed_fit(vae, X_train)
        record = {
            "n_components": k,
            "vae_elbo": vae.score(X_test),
            "pca_loglik": float(pca.score(X_test)),
            "vae_mse": mse(vae, X_test),
            "pca_mse": mse(pca, X_test),
            "vae_fit_s": fit_s,
            "epochs": vae.n_iter_,
            "max_iter": vae.training_plan_["max_iter"],
        }
        records.append(record)
        print(record, flush=True)
    title = (
        f"{args.dataset} test rows: mean ELBO per row of VariationalAutoencoder "
        "(Gaussian likelihood) against PCA.score (probabilistic PCA's exact "
        "log-likelihood), both in nats per row in pixel units; higher is "
        "better."
        + (
            f" VariationalAutoencoder at its defaults but {format_params(overrides)}."
            if overrides
            else ""
        )
        + "\n\n"
    )
    path = write_results(
        f"bench_vae_{args.dataset}",
        records,
        title + markdown_table(records, list(records[0])),
        args.out or default_out(args.quick or bool(overrides)),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
