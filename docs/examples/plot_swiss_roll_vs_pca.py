"""
===============================================
PCA against an autoencoder on a curved manifold
===============================================

:func:`~skae.make_embedded_swiss_roll` hides a swiss roll, a 2-D sheet rolled
up in 3-D, in 20 dimensions. Two numbers locate a point on the sheet: how far
along the spiral it lies, and where across the sheet. PCA with two
components keeps the plane of the spiral and drops the third direction, the
width of the sheet, so every point comes back to the middle of the sheet.
:class:`~skae.AutoencoderTransformer` with two components starts at PCA's
solution (``init='pca'``) and bends its code to the roll, so that both
numbers fit in two dimensions.
"""

# %%
# Data and the two reducers
# -------------------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer, make_embedded_swiss_roll

# Few epochs on purpose: the estimator warns that max_iter was reached.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, t = make_embedded_swiss_roll(n_samples=1500, n_features=20, random_state=0)
X_train, X_test, t_train, t_test = train_test_split(X, t, random_state=0)

pca = PCA(n_components=2).fit(X_train)
ae = AutoencoderTransformer(
    n_components=2, hidden_layer_sizes=(128, 64), max_iter=40, random_state=0
).fit(X_train)


def mse(model, X):
    """Mean squared reconstruction error of ``model`` on ``X``."""
    return np.mean((X - model.inverse_transform(model.transform(X))) ** 2)


print(f"held-out reconstruction MSE, PCA:         {mse(pca, X_test):.4f}")
print(f"held-out reconstruction MSE, autoencoder: {mse(ae, X_test):.4f}")
print(f"epochs run: {ae.n_iter_}, weights kept from epoch {ae.best_epoch_}")

# %%
# What each code keeps
# --------------------
# Colour is the position along the spiral, ``t``. PCA's code is the spiral
# seen end-on: ``t`` in order, the position across the sheet gone. The
# autoencoder's code has to hold both coordinates in the same two numbers,
# so its map of ``t`` is folded, but its reconstructions, printed above,
# are much closer to the data.
fig, axes = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
for ax, model, title in [(axes[0], pca, "PCA"), (axes[1], ae, "autoencoder")]:
    codes = model.transform(X_test)
    points = ax.scatter(codes[:, 0], codes[:, 1], c=t_test, s=8, cmap="viridis")
    ax.set(title=f"{title}: MSE {mse(model, X_test):.3f}", xticks=[], yticks=[])
fig.colorbar(points, ax=axes, label="position along the roll, t")
plt.show()

# %%
# When PCA is enough
# ------------------
# On data that lie near a flat subspace, PCA's reconstruction is already the
# best there is and the autoencoder has nothing to add: early stopping then
# keeps the initial state (``best_epoch_ == 0``), which is PCA's solution.
# The autoencoder wins where the data bend, as here, and costs a training
# run instead of one SVD.
