"""The README's main job: PCA against AutoencoderTransformer on digits.

The dense half of :mod:`benchmarks.bench_reconstruction` (how much lower is
an autoencoder's held-out reconstruction error than PCA's?) on scikit-learn's
bundled digits, printed as a table, with a plot: error against
``n_components`` and a few test digits reconstructed by each method.

Run ``make demo``, or ``python -m benchmarks.demo --out demo_output``: about
40 seconds on 2 CPU cores.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from benchmarks._common import markdown_table, timed_fit, writable_folder  # noqa: E402
from benchmarks.bench_reconstruction import KS, QUICK_METHODS, load, run  # noqa: E402
from skae import AutoencoderTransformer  # noqa: E402

SHOWN_K = 4


def plot(records, path):
    """Save error-vs-k and a strip of reconstructions at ``SHOWN_K``."""
    X_train, X_test, *_ = load("digits")
    pca = PCA(n_components=SHOWN_K).fit(X_train)
    ae = AutoencoderTransformer(n_components=SHOWN_K, random_state=0)
    timed_fit(ae, X_train)
    shown = X_test[:8]
    rows = {
        "test digits": shown,
        f"PCA, k={SHOWN_K}": pca.inverse_transform(pca.transform(shown)),
        f"skae, k={SHOWN_K}": ae.inverse_transform(ae.transform(shown)),
    }

    fig = plt.figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.3])
    ax = left.subplots()
    for method, marker, label in (
        ("pca", "o-", "PCA"),
        ("skae-dense", "s-", "AutoencoderTransformer"),
    ):
        points = [r for r in records if r["method"] == method]
        ks = [r["n_components"] for r in points]
        ax.plot(ks, [r["mse"] for r in points], marker, label=label)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="n_components",
        ylabel="held-out reconstruction MSE",
        title="digits: lower is better",
    )
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.legend()
    axes = right.subplots(len(rows), len(shown))
    for axes_row, (label, images) in zip(axes, rows.items(), strict=True):
        for axis, image in zip(axes_row, images, strict=True):
            axis.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
        axes_row[0].set_ylabel(label, rotation=0, ha="right", va="center")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=writable_folder, default="demo_output")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    records = run("digits", KS["digits"], QUICK_METHODS)
    table = markdown_table(records, ["method", "n_components", "mse", "ratio", "fit_s"])
    print("\nHeld-out reconstruction MSE on digits (ratio = MSE / PCA's MSE):\n")
    print(table)
    (out / "demo.md").write_text(table + "\n")
    plot(records, out / "demo.png")
    print(f"\nwrote {out / 'demo.md'} and {out / 'demo.png'}")


if __name__ == "__main__":
    main()
