"""
=====================================================
``init='pca'`` against a randomly initialised network
=====================================================

By default (``init='pca'``) the autoencoder's network is the sum of a linear
path, set to PCA's solution on the training rows, and a nonlinear residual
whose last layers start at zero. Before the first epoch it therefore
reconstructs exactly as PCA does, and training moves it away from PCA only
where that lowers the loss. Early stopping counts that starting state as
epoch 0: if no epoch beats it on the held-out rows, the PCA solution is what
you get.

``init='random'`` is the classical autoencoder: PyTorch's default
initialisation, no linear path. This example trains both on the 8x8
digits (:func:`~sklearn.datasets.load_digits`) for the same number of
epochs, compares their held-out reconstruction error with PCA's, and draws
their loss curves with :class:`~skae.plotting.LossCurveDisplay`.
"""

# %%
# Fit both
# --------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer
from skae.plotting import LossCurveDisplay

# Few epochs on purpose: the estimator warns that max_iter was reached.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, _ = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)


def mse(model, X):
    """Mean squared reconstruction error of ``model`` on ``X``."""
    return np.mean((X - model.inverse_transform(model.transform(X))) ** 2)


pca = PCA(n_components=8).fit(X_train)
print(f"PCA: held-out MSE {mse(pca, X_test):.3f}")
models = {}
for init in ["pca", "random"]:
    models[init] = AutoencoderTransformer(
        8, init=init, hidden_layer_sizes=(256, 128), max_iter=30, random_state=0
    ).fit(X_train)
    print(
        f"init={init!r}: held-out MSE {mse(models[init], X_test):.3f} "
        f"(weights of epoch {models[init].best_epoch_} of {models[init].n_iter_})"
    )

# %%
# Loss curves
# -----------
# The losses are in the network's units (the data centred and divided by
# their overall root mean square), the same for both models, so the curves
# compare directly. The dashed line marks the epoch whose weights were kept.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True, layout="constrained")
for ax, (init, model) in zip(axes, models.items(), strict=True):
    LossCurveDisplay.from_estimator(model, ax=ax)
    ax.set_title(f"init={init!r}")
plt.show()

# %%
# With ``init='pca'`` training starts from PCA's error and goes down from
# there; a random network starts far above it and spends its first epochs
# getting back to where PCA already is. ``init='random'`` is there for
# comparison and for research on the classical model; the PCA start is the
# better default.
