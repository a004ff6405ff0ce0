"""Denoising Fashion-MNIST: DenoisingAutoencoder against PCA, and the seed runs.

``python -m benchmarks.denoising`` (the comparison): Fashion-MNIST test
images with Gaussian noise of standard deviation sigma, clipped to [0, 1].
For each sigma it reports the PSNR of the noisy input, of PCA denoising
(fit on the clean training images, project the noisy test images and
reconstruct) at its best ``k`` among 16..256 (chosen on the test set itself,
PCA's best case), and of a DenoisingAutoencoder trained with that noise.
PSNR is ``10 log10(1 / MSE)`` over all test pixels, for images in [0, 1].

``--experiment keras_dense`` reproduces the dense tutorial run: 784 -> 32,
Gaussian noise factor 0.5 clipped to [0, 1], binary cross-entropy, 20
epochs, batch 256, on Fashion-MNIST (``--dataset mnist`` where MNIST is at
hand). ``--experiment cifar_conv`` is the convolutional one: 3x32x32 -> 128,
sigma 0.1 clipped, on CIFAR-10; it needs CIFAR-10 (downloaded by
:func:`skae.fetch_cifar10`, or in ``$SKAE_DATA``) and stops with the loader's
message where it cannot be had.

Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist`` or is
downloaded by :func:`skae.fetch_fashion_mnist`. Results go to
``benchmarks/results/denoising_<experiment>.{json,md}``.
"""

import argparse

import numpy as np
from sklearn.decomposition import PCA

from benchmarks._common import RESULTS, markdown_table, timed_fit, write_results
from skae import DenoisingAutoencoder, fetch_cifar10, fetch_fashion_mnist, fetch_mnist

FETCHERS = {
    "fashion_mnist": fetch_fashion_mnist,
    "mnist": fetch_mnist,
    "cifar10": fetch_cifar10,
}
PCA_KS = (16, 32, 64, 128, 256)


def psnr(clean, estimate):
    """PSNR in dB of ``estimate`` against ``clean``, both in [0, 1]."""
    return float(10 * np.log10(1.0 / np.mean((clean - estimate) ** 2)))


def add_noise(X, sigma, seed):
    """Gaussian noise of standard deviation ``sigma``, clipped to [0, 1]."""
    rng = np.random.RandomState(seed)
    noisy = X + rng.normal(0.0, sigma, size=X.shape).astype(X.dtype)
    return np.clip(noisy, 0.0, 1.0)


def compare(dataset, sigmas, n_components, max_iter, device):
    """PSNR of noisy input, best PCA and skae for each sigma."""
    train = FETCHERS[dataset](subset="train")
    test = FETCHERS[dataset](subset="test")
    X_train, X_test = train.data, test.data
    pcas = {k: PCA(n_components=k, random_state=0).fit(X_train) for k in PCA_KS}
    records = []
    for sigma in sigmas:
        noisy = add_noise(X_test, sigma, seed=1)
        pca_psnr = {
            k: psnr(X_test, np.clip(pca.inverse_transform(pca.transform(noisy)), 0, 1))
            for k, pca in pcas.items()
        }
        best_k = max(pca_psnr, key=pca_psnr.get)
        params = {} if max_iter is None else {"max_iter": max_iter}
        model = DenoisingAutoencoder(
            n_components,
            noise="gaussian",
            noise_level=sigma,
            random_state=0,
            device=device,
            **params,
        )
        fit_s = timed_fit(model, X_train)
        record = {
            "dataset": dataset,
            "sigma": sigma,
            "noisy_psnr": psnr(X_test, noisy),
            "pca_best_k": best_k,
            "pca_best_psnr": pca_psnr[best_k],
            "skae_n_components": n_components,
            "skae_psnr": psnr(X_test, model.denoise(noisy)),
            "skae_fit_s": fit_s,
            "epochs": model.n_iter_,
            "max_iter": model.max_iter,
        }
        record["gain_over_pca_db"] = record["skae_psnr"] - record["pca_best_psnr"]
        records.append(record)
        print(record, flush=True)
    return records


def seed_experiment(name, dataset, device):
    """One of the two tutorial runs; returns its record."""
    if name == "keras_dense":
        sigma = 0.5
        params = dict(
            n_components=32,
            hidden_layer_sizes=(),
            init="random",
            loss="bce",
            max_iter=20,
            batch_size=256,
            early_stopping=False,
            n_iter_no_change=20,  # every one of the 20 epochs runs
        )
    else:
        sigma, dataset = 0.1, "cifar10"
        params = dict(
            n_components=128,
            image_shape=(3, 32, 32),
            init="random",
            loss="bce",
            max_iter=100,
            batch_size=128,
            early_stopping=False,
            n_iter_no_change=100,  # every one of the 100 epochs runs
        )
    train = FETCHERS[dataset](subset="train")
    test = FETCHERS[dataset](subset="test")
    model = DenoisingAutoencoder(
        noise="gaussian", noise_level=sigma, random_state=0, device=device, **params
    )
    fit_s = timed_fit(model, train.data)
    noisy = add_noise(test.data, sigma, seed=1)
    record = {
        "experiment": name,
        "dataset": dataset,
        "sigma": sigma,
        "noisy_psnr": psnr(test.data, noisy),
        "skae_psnr": psnr(test.data, model.denoise(noisy)),
        "fit_s": fit_s,
        "epochs": model.n_iter_,
    }
    print(record, flush=True)
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--experiment",
        choices=["compare", "keras_dense", "cifar_conv"],
        default="compare",
    )
    parser.add_argument(
        "--dataset", choices=["fashion_mnist", "mnist"], default="fashion_mnist"
    )
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.1, 0.3, 0.5])
    parser.add_argument("--n-components", type=int, default=64)
    parser.add_argument(
        "--max-iter",
        type=int,
        default=None,
        help="override DenoisingAutoencoder's max_iter (recorded in the results)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    if args.experiment == "compare":
        records = compare(
            args.dataset, args.sigmas, args.n_components, args.max_iter, args.device
        )
        columns = list(records[0])
        title = (
            f"Denoising {args.dataset} test images (Gaussian noise, clipped): PSNR "
            "in dB, higher is better. PCA: best k among "
            f"{', '.join(map(str, PCA_KS))} chosen on the test set.\n\n"
        )
    else:
        records = [seed_experiment(args.experiment, args.dataset, args.device)]
        columns = list(records[0])
        title = f"The {args.experiment} tutorial run, PSNR in dB.\n\n"
    path = write_results(
        f"denoising_{args.experiment}_{records[0]['dataset']}",
        records,
        title + markdown_table(records, columns),
        args.out,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
