"""VariationalAutoencoder against probabilistic PCA on Fashion-MNIST.

For n_components in 2, 8 and 32 it reports, on the 10,000 test images:

- the mean ELBO per image of ``VariationalAutoencoder`` (``loss='mse'``, a
  Gaussian likelihood with a learned variance): a lower bound on the
  log-density of each image in pixel units;
- ``PCA.score``: the exact log-likelihood of probabilistic PCA, in the same
  units. The two are comparable (both densities of the same rows), with one
  caveat: the ELBO is a bound, so the gap understates the VAE;
- reconstruction MSE through the posterior mean, and PCA's.

With ``loss='bce'`` the ELBO is a Bernoulli likelihood of grey levels, a
different quantity: it is not compared with PCA here.

``python -m benchmarks.variational [--max-iter N]``; results in
``benchmarks/results/variational_fashion_mnist.{json,md}``.
"""

import argparse

import numpy as np
from sklearn.decomposition import PCA

from benchmarks._common import RESULTS, markdown_table, timed_fit, write_results
from skae import VariationalAutoencoder, fetch_fashion_mnist


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--max-iter", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    X_train = fetch_fashion_mnist(subset="train").data
    X_test = fetch_fashion_mnist(subset="test").data
    records = []
    for k in args.ks:
        pca = PCA(n_components=k, random_state=0).fit(X_train)
        params = {} if args.max_iter is None else {"max_iter": args.max_iter}
        vae = VariationalAutoencoder(k, random_state=0, device=args.device, **params)
        fit_s = timed_fit(vae, X_train)
        record = {
            "n_components": k,
            "vae_elbo": vae.score(X_test),
            "pca_loglik": float(pca.score(X_test)),
            "vae_mse": float(
                np.mean((X_test - vae.inverse_transform(vae.transform(X_test))) ** 2)
            ),
            "pca_mse": float(
                np.mean((X_test - pca.inverse_transform(pca.transform(X_test))) ** 2)
            ),
            "vae_fit_s": fit_s,
            "epochs": vae.n_iter_,
            "max_iter": vae.max_iter,
        }
        records.append(record)
        print(record, flush=True)
    title = (
        "Fashion-MNIST test images: mean ELBO per image of VariationalAutoencoder "
        "(Gaussian likelihood) against PCA.score (probabilistic PCA's exact "
        "log-likelihood), both in nats per image in pixel units; higher is better.\n\n"
    )
    path = write_results(
        "variational_fashion_mnist",
        records,
        title + markdown_table(records, list(records[0])),
        args.out,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
