"""The README's main job: PCA against AutoencoderTransformer on digits.

Fits both at several ``n_components`` on scikit-learn's bundled digits
(75/25 split, ``random_state=0``), prints held-out reconstruction error and
fit time as a table, and saves a plot: error against ``n_components`` and a
few test digits reconstructed by each method.

Run ``make demo``, or ``python -m benchmarks.demo --out demo_output``.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from benchmarks._common import markdown_table, timed_fit  # noqa: E402
from benchmarks.pca_ratio import load, run  # noqa: E402
from skae import AutoencoderTransformer  # noqa: E402

KS = (2, 4, 8, 16, 32)
SHOWN_K = 4


def plot(records, X_test, path):
    """Save error-vs-k and a strip of reconstructions at ``SHOWN_K``."""
    X_train, _, _ = load("digits")
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
    ks = [r["n_components"] for r in records]
    ax.plot(ks, [r["pca_mse"] for r in records], "o-", label="PCA")
    ax.plot(ks, [r["skae_mse"] for r in records], "s-", label="AutoencoderTransformer")
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
            axis.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
            axis.set_xticks([])
            axis.set_yticks([])
        axes_row[0].set_ylabel(label, rotation=0, ha="right", va="center")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_output")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    records = run("digits", KS, ["dense"])
    table = markdown_table(
        records,
        ["n_components", "pca_mse", "skae_mse", "ratio", "pca_fit_s", "skae_fit_s"],
    )
    print("\nHeld-out reconstruction MSE on digits (ratio = skae / PCA):\n")
    print(table)
    (out / "demo.md").write_text(table + "\n")
    _, X_test, _ = load("digits")
    plot(records, X_test, out / "demo.png")
    print(f"\nwrote {out / 'demo.md'} and {out / 'demo.png'}")


if __name__ == "__main__":
    main()
