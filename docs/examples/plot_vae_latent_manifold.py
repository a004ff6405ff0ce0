"""
================================================
The latent manifold of a variational autoencoder
================================================

With ``n_components=2`` the whole code space of a
:class:`~skae.VariationalAutoencoder` fits on one page. Its prior is a
standard normal, so a regular grid over the prior's quantiles, decoded with
:meth:`~skae.VariationalAutoencoder.inverse_transform`, is a map of what the
decoder draws everywhere the prior puts mass: the learned manifold of
digits. Beside it, :meth:`~skae.VariationalAutoencoder.transform` places
held-out digits in the same space, coloured by their label, which the model
never saw.
"""

# %%
# Fit a 2-D model
# ---------------
# The pixels are divided by 16 to lie in [0, 1], for the Bernoulli
# likelihood of ``loss='bce'``: the decoder then outputs images in [0, 1].
import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import VariationalAutoencoder

# max_iter caps the epochs to keep the example fast (here early stopping
# ends the fit first); a fit that reaches it warns, silenced here.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = X / 16
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
vae = VariationalAutoencoder(
    n_components=2,
    loss="bce",
    hidden_layer_sizes=(256, 128),
    max_iter=100,
    random_state=0,
).fit(X_train)
print(f"epochs run: {vae.n_iter_}, weights kept from epoch {vae.best_epoch_}")

# %%
# Decode a grid over the prior
# ----------------------------
# A grid that is regular in the latent coordinates would spend most of its
# points in the prior's tails. Spacing it by the prior's quantiles instead
# (:func:`scipy.stats.norm.ppf` of evenly spaced probabilities from 0.05 to
# 0.95 on each axis) gives each tile the same share of prior mass along
# each axis. The rows run from the top of the latent plane to the bottom,
# so that the mosaic has the orientation of the scatter plot below.
n_grid = 15
quantiles = norm.ppf(np.linspace(0.05, 0.95, n_grid))
z1, z2 = np.meshgrid(quantiles, quantiles[::-1])
grid = np.c_[z1.ravel(), z2.ravel()]
images = vae.inverse_transform(grid).reshape(n_grid, n_grid, 8, 8)
# One pixel of white between tiles.
mosaic = np.zeros((9 * n_grid - 1, 9 * n_grid - 1))
for i in range(n_grid):
    for j in range(n_grid):
        mosaic[9 * i : 9 * i + 8, 9 * j : 9 * j + 8] = images[i, j]

# %%
# Encode held-out digits
# ----------------------
# ``transform`` returns the posterior mean of each row's code. If the model
# fits its prior well, these codes spread like a standard normal, a little
# narrower (each row's posterior has its own spread around its mean). The
# grid covers the central 90% of the prior on each axis.
codes = vae.transform(X_test)
inside = np.all((codes > quantiles[0]) & (codes < quantiles[-1]), axis=1)
print(f"test codes: mean {np.round(codes.mean(0), 2)}, std {np.round(codes.std(0), 2)}")
print(f"fraction of test codes inside the grid: {inside.mean():.2f}")

# %%
# The manifold and the map
# ------------------------
fig, (ax_grid, ax_codes) = plt.subplots(1, 2, figsize=(11, 5.2), layout="constrained")
ax_grid.imshow(mosaic, cmap="gray_r", vmin=0, vmax=1)
ax_grid.set(
    title="decoded grid over the prior's quantiles",
    xticks=[],
    yticks=[],
    xlabel="z1 (5% to 95% quantile)",
    ylabel="z2 (95% to 5% quantile)",
)
ax_codes.scatter(
    grid[:, 0], grid[:, 1], marker="+", color="lightgray", s=20, label="grid"
)
points = ax_codes.scatter(
    codes[:, 0], codes[:, 1], c=y_test, cmap="tab10", s=10, vmin=-0.5, vmax=9.5
)
for digit in range(10):
    ax_codes.annotate(
        str(digit),
        np.median(codes[y_test == digit], axis=0),
        fontsize=14,
        fontweight="bold",
        ha="center",
        va="center",
    )
fig.colorbar(points, ax=ax_codes, ticks=range(10), label="digit")
ax_codes.set(
    title="posterior means of the test digits",
    xlabel="z1",
    ylabel="z2",
    aspect="equal",
)
ax_codes.legend(loc="upper right")
plt.show()

# %%
# Read the two panels together: each region of the scatter plot, where the
# codes of one digit gather (its label is drawn at their median), decodes
# to images of that digit at the same place in the mosaic. Between the
# regions the decoded images morph from one digit into another, and every
# tile, even where few test codes fall, is a digit-like image: the KL term
# of the ELBO makes the codes fill the prior without wide holes, so the
# decoder has to draw something sensible everywhere the prior puts mass.
# That is what lets :meth:`~skae.VariationalAutoencoder.sample` generate
# new digits (see
# :ref:`sphx_glr_auto_examples_plot_vae_generate_digits.py`).
#
# Two dimensions are few for ten digits: some classes overlap in the
# scatter plot, and their tiles blend them. More components keep more
# detail, at the cost of a code that cannot be drawn whole.
