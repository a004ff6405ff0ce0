"""
===========================================================
Choosing ``n_components`` from one fit: ordered components
===========================================================

PCA users choose ``k`` from one fit: the components are ordered, and
``explained_variance_ratio_`` shows what each adds. An
:class:`~skae.AutoencoderTransformer` fitted with ``ordered=True`` has the
same: its decoder is trained on every row from the whole code and from a
prefix of it, so the first ``k`` columns of ``transform`` are a
``k``-component code, ``explained_variance_ratio_`` holds what each unit adds
on held-out rows, and :meth:`~skae.AutoencoderTransformer.truncate` returns
the ``k``-unit model without refitting.

This example reads the spectrum of one ordered fit beside PCA's, keeps the
prefix that explains 80% of the variance, and compares the time of that one
fit with a :class:`~sklearn.model_selection.GridSearchCV` over ``k``, which
fits a network per width and fold. It also shows what the single fit gives
up: on the digits, the prefixes reconstruct better than PCA but worse than
networks fitted at each width, 1.18 to 1.33 times their held-out error for
``k`` from 2 to 32 with the defaults, 1.48 times for the first unit alone
(``benchmarks/bench_ordered.py``; results in
``benchmarks/results/bench_ordered_digits.md``).
"""

# %%
# One ordered fit
# ---------------
# A small network and a cap on the epochs keep the example fast; the
# defaults fit better.
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split

from skae import AutoencoderTransformer

warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, _ = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
params = dict(hidden_layer_sizes=(128,), max_iter=60, random_state=0)

start = time.perf_counter()
ae = AutoencoderTransformer(16, ordered=True, **params).fit(X_train)
one_fit = time.perf_counter() - start
pca = PCA(16).fit(X_train)

# %%
# The spectrum, beside PCA's
# --------------------------
# ``explained_variance_ratio_`` is measured on the rows early stopping held
# out, and sums to ``explained_variance_score_``; PCA's is on its training
# rows. Unlike PCA's, the autoencoder's entries need not fall with every
# unit.
ks = np.arange(1, 17)
fig, (ax_spec, ax_cum) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
ax_spec.plot(ks, pca.explained_variance_ratio_, "o-", label="PCA")
ax_spec.plot(ks, ae.explained_variance_ratio_, "s-", label="ordered autoencoder")
ax_spec.set(xlabel="component", ylabel="explained variance ratio")
ax_spec.legend()
ax_cum.plot(ks, np.cumsum(pca.explained_variance_ratio_), "o-", label="PCA")
ax_cum.plot(ks, np.cumsum(ae.explained_variance_ratio_), "s-", label="autoencoder")
ax_cum.axhline(0.8, color="gray", linestyle=":")
ax_cum.set(xlabel="k", ylabel="cumulative explained variance")
ax_cum.legend()

# %%
# Keep the prefix that explains 80%
# ---------------------------------
# The smallest ``k`` whose cumulative ratio reaches 0.8, as
# ``n_components=0.8`` would choose in the fit itself (the whole code if
# none does; the ratios can be negative, so the cumulative sum need not
# rise); ``truncate`` gives that model. In a Pipeline, wrap it in
# ``sklearn.frozen.FrozenEstimator``, or the Pipeline's ``fit`` trains a
# ``k``-unit network anew, from scratch.
reached = np.cumsum(ae.explained_variance_ratio_) >= 0.8
k = int(np.argmax(reached)) + 1 if reached.any() else ae.n_components_
small = ae.truncate(k)
print(f"k = {k}; held-out explained variance {small.explained_variance_score_:.3f}")
print(f"PCA needs {PCA(0.8).fit(X_train).n_components_} components for 80%")

# %%
# What a search over k costs, and what it buys
# --------------------------------------------
# The search fits one network per width and fold, and refits the best.
# Its reconstruction score always prefers the widest code, so the point of
# running it is the curve of held-out errors, which the single fit gives
# at once, for every prefix.
grid = [2, 4, 8, 16]
start = time.perf_counter()
search = GridSearchCV(
    AutoencoderTransformer(ordered=False, **params), {"n_components": grid}, cv=3
).fit(X_train)
search_time = time.perf_counter() - start
prefix_mse = [
    np.mean((X_test - ae.inverse_transform(ae.transform(X_test)[:, :k])) ** 2)
    for k in grid
]
pca_mse = [
    np.mean((X_test - p.inverse_transform(p.transform(X_test))) ** 2)
    for p in (PCA(k).fit(X_train) for k in grid)
]
print(f"one ordered fit: {one_fit:.1f} s; search over {grid}: {search_time:.1f} s")

fig, (ax_err, ax_time) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
ax_err.plot(grid, -search.cv_results_["mean_test_score"], "o-", label="fit at k (CV)")
ax_err.plot(grid, prefix_mse, "s-", label="prefix of one fit (test)")
ax_err.plot(grid, pca_mse, "^-", label="PCA (test)")
ax_err.set(xscale="log", xlabel="k", ylabel="held-out MSE")
ax_err.set_xticks(grid, [str(k) for k in grid])
ax_err.minorticks_off()
ax_err.legend()
ax_time.bar(["one ordered fit", "GridSearchCV"], [one_fit, search_time])
ax_time.set(ylabel="seconds")
plt.show()

# %%
# Up to ``k = 8`` the prefixes lie between PCA and the networks fitted at
# each width; at ``k = 16``, the whole code, the two curves meet here. The
# panel compares two kinds of held-out error: the search's is
# cross-validated (networks trained on two thirds of the training rows), the
# prefixes' is on the test rows. The ratios quoted at the top come from the
# benchmark, which fits every model with the defaults and scores all of them
# on the same test rows.
