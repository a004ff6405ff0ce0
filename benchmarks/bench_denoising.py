"""Does DenoisingAutoencoder remove noise better than PCA, and never hurt?

Test images get Gaussian noise of standard deviation sigma, clipped to
[0, 1], at sigma = 0.05, 0.1, 0.2, 0.3 and 0.5. For each sigma it reports
the PSNR on the test images of:

* the noisy input itself;
* PCA denoising (fit on the clean training images, project the noisy images
  and reconstruct), at the ``k`` that denoises the validation images best;
* ``DenoisingAutoencoder`` with its defaults (``noise='gaussian'``,
  ``noise_level=sigma``, ``random_state=0``), at the code width that
  denoises the validation images best;
* the same with the convolutional network (``image_shape``), at one width.

Every setting is chosen on validation images (training images held out,
with their own noise), never on the test images. PSNR is
``10 log10(1 / MSE)`` over all test pixels, for images in [0, 1].

Commands and their durations on 2 CPU cores (one torch thread)::

    python -m benchmarks.bench_denoising --dataset digits         # ~2 min
    python -m benchmarks.bench_denoising --dataset fashion_mnist  # ~15 min
    python -m benchmarks.bench_denoising --quick                  # digits, ~1 min

Digits: ``train_test_split(test_size=0.25, random_state=0)`` and a fifth of
the training rows for validation, scaled to [0, 1]. Fashion-MNIST (needs
its files: ``apt-get install dataset-fashion-mnist`` or a download through
:func:`skae.fetch_fashion_mnist`): 5,000 training and 1,000 validation
images drawn from the 60,000 training images, sized for a CPU (the
convolutional fits take minutes each there), and the 10,000 test images.
Every denoiser trains with the defaults' planned run (60 epochs; the
epochs are in the results).
``--set key=value`` overrides a denoiser parameter, to measure a candidate
setting (e.g. ``--set skip=None``). Results:
``benchmarks/results/bench_denoising_<dataset>.{json,md}``; ``--quick`` and
``--set`` write to ``bench_quick_output/``.
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
from skae import DenoisingAutoencoder, fetch_fashion_mnist

SIGMAS = (0.05, 0.1, 0.2, 0.3, 0.5)
# PCA's candidate k, up to every feature (no denoising at all: under light
# noise the best k is large), and the dense denoiser's candidate widths.
PCA_KS = {
    "digits": (4, 8, 16, 32, 48, 56, 64),
    "fashion_mnist": (16, 32, 64, 128, 256, 384, 512, 640, 784),
}
WIDTHS = {"digits": (8, 16, 32), "fashion_mnist": (32, 128)}
CONV_WIDTH = {"digits": 16, "fashion_mnist": 64}
IMAGE_SHAPE = {"digits": (1, 8, 8), "fashion_mnist": (1, 28, 28)}
# Fashion-MNIST rows for training and validation, drawn from the 60,000.
FASHION_ROWS = (5000, 1000)


def load(dataset):
    """Clean training, validation and test rows in [0, 1]."""
    if dataset == "digits":
        X, _ = load_digits(return_X_y=True)
        X_fit, X_test = train_test_split(X / 16.0, test_size=0.25, random_state=0)
        X_train, X_valid = train_test_split(X_fit, test_size=0.2, random_state=0)
        return X_train, X_valid, X_test
    train = fetch_fashion_mnist(subset="train").data
    rows = np.random.RandomState(0).permutation(len(train))
    n_train, n_valid = FASHION_ROWS
    return (
        train[rows[:n_train]],
        train[rows[n_train : n_train + n_valid]],
        fetch_fashion_mnist(subset="test").data,
    )


def psnr(clean, estimate):
    """PSNR in dB of ``estimate`` against ``clean``, both in [0, 1]."""
    return float(10 * np.log10(1.0 / np.mean((clean - estimate) ** 2)))


def add_noise(X, sigma, seed):
    """Gaussian noise of standard deviation ``sigma``, clipped to [0, 1]."""
    rng = np.random.RandomState(seed)
    noisy = X + rng.normal(0.0, sigma, size=X.shape).astype(X.dtype)
    return np.clip(noisy, 0.0, 1.0)


def best_on_validation(candidates, valid, noisy_valid):
    """The candidate (key, denoise function) that denoises validation rows best."""
    scores = {key: psnr(valid, denoise(noisy_valid)) for key, denoise in candidates}
    return max(scores, key=scores.get)


def pca_denoiser(pca):
    """Project noisy rows on PCA's components and back, clipped to [0, 1]."""
    return lambda X: np.clip(pca.inverse_transform(pca.transform(X)), 0, 1)


def compare(dataset, quick, overrides, device):
    """One record per sigma: noisy input, PCA, dense and conv denoisers."""
    X_train, X_valid, X_test = load(dataset)
    pcas = {k: PCA(k, random_state=0).fit(X_train) for k in PCA_KS[dataset]}
    sigmas = (0.1,) if quick else SIGMAS
    widths = WIDTHS[dataset][:1] if quick else WIDTHS[dataset]
    records = []
    for sigma in sigmas:
        noisy_valid = add_noise(X_valid, sigma, seed=2)
        noisy_test = add_noise(X_test, sigma, seed=1)
        pca_k = best_on_validation(
            [(k, pca_denoiser(pca)) for k, pca in pcas.items()], X_valid, noisy_valid
        )
        params = {
            "noise": "gaussian",
            "noise_level": sigma,
            "random_state": 0,
            "device": device,
            **({"max_iter": 10} if quick else {}),
            **overrides,
        }
        dense, dense_s = {}, {}
        for width in widths:
            dense[width] = DenoisingAutoencoder(width, **params)
            dense_s[width] = timed_fit(dense[width], X_train)
        width = best_on_validation(
            [(w, model.denoise) for w, model in dense.items()], X_valid, noisy_valid
        )
        conv = DenoisingAutoencoder(
            CONV_WIDTH[dataset], image_shape=IMAGE_SHAPE[dataset], **params
        )
        conv_s = timed_fit(conv, X_train)
        record = {
            "sigma": sigma,
            "noisy_psnr": psnr(X_test, noisy_test),
            "pca_k": pca_k,
            "pca_psnr": psnr(X_test, pca_denoiser(pcas[pca_k])(noisy_test)),
            "dense_width": width,
            "dense_psnr": psnr(X_test, dense[width].denoise(noisy_test)),
            "dense_fit_s": dense_s[width],
            "dense_epochs": dense[width].n_iter_,
            "conv_width": CONV_WIDTH[dataset],
            "conv_psnr": psnr(X_test, conv.denoise(noisy_test)),
            "conv_fit_s": conv_s,
            "conv_epochs": conv.n_iter_,
            "conv_max_iter": conv.max_iter,
        }
        record["dense_over_pca_db"] = record["dense_psnr"] - record["pca_psnr"]
        record["dense_over_noisy_db"] = record["dense_psnr"] - record["noisy_psnr"]
        records.append(record)
        print(record, flush=True)
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(PCA_KS), default="digits")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="sigma 0.1, one width, 10 epochs, to bench_quick_output/",
    )
    add_set_argument(parser)
    parser.add_argument("--device", type=device_name, default="auto")
    parser.add_argument("--out", type=writable_folder, default=None)
    args = parser.parse_args(argv)
    overrides = parse_overrides(
        parser,
        args.set,
        DenoisingAutoencoder,
        fixed=("n_components", "image_shape", "noise_level"),
    )
    records = compare(args.dataset, args.quick, overrides, args.device)
    rows = (
        f"{FASHION_ROWS[0]:,} training and {FASHION_ROWS[1]:,} validation images"
        if args.dataset == "fashion_mnist"
        else "three quarters of the images, a fifth of them for validation"
    )
    title = (
        f"Denoising {args.dataset} test images (Gaussian noise, clipped): PSNR "
        f"in dB, higher is better. Trained on {rows}. PCA's k (among "
        f"{', '.join(map(str, PCA_KS[args.dataset]))}) and the dense "
        "denoiser's width (among "
        f"{', '.join(map(str, WIDTHS[args.dataset]))}) chosen on the validation "
        "images; DenoisingAutoencoder at its defaults"
        + (f" but {format_params(overrides)}" if overrides else "")
        + ".\n\n"
    )
    path = write_results(
        f"bench_denoising_{args.dataset}",
        records,
        title + markdown_table(records, list(records[0])),
        args.out or default_out(args.quick or bool(overrides)),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
