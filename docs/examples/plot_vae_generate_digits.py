"""
=================================================
Generating digits with a variational autoencoder
=================================================

A :class:`~skae.VariationalAutoencoder` is trained so that its codes follow
a standard normal prior. Any draw from that prior, decoded, should then look
like a row of the data: :meth:`~skae.VariationalAutoencoder.sample` does
exactly that, and so generates new digits that are in no training set.

This example fits one on the 8x8 digits, draws new digits, and shows them
beside real ones, beside the same draws decoded by probabilistic PCA (where
the network starts from, with the default ``init='pca'``), and beside the
samples of a model trained with a larger ``beta``.
"""

# %%
# Fit on the digits
# -----------------
# The pixels of :func:`~sklearn.datasets.load_digits` are grey levels from
# 0 to 16. Divided by 16 they lie in [0, 1] and can be read as the
# probability that a pixel is inked, which is what the Bernoulli likelihood
# of ``loss='bce'`` models. Its decoder outputs probabilities, so the
# samples are images in [0, 1] with no likelihood variance to learn.
# ``loss='mse'`` (a Gaussian likelihood) works too; its decoder's mean is
# not confined to [0, 1].
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import VariationalAutoencoder
from skae.plotting import SamplesDisplay

# Few epochs on purpose: the beta=1 fit below stops at max_iter and warns
# (a ConvergenceWarning), which would only clutter the output here.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = X / 16
n_components = 8
vae = VariationalAutoencoder(
    n_components,
    loss="bce",
    hidden_layer_sizes=(256, 128),
    max_iter=50,
    random_state=0,
).fit(X)

# %%
# Draw new digits
# ---------------
# ``sample(n, random_state=0)`` draws ``n`` codes from the prior
# ``N(0, I)`` and returns the decoder's mean for each: for ``loss='bce'``,
# the probability of ink at each pixel, an image in [0, 1].
n_samples = 40
samples = vae.sample(n_samples, random_state=0)
print(
    f"samples: shape {samples.shape}, values in [{samples.min():.3f}, "
    f"{samples.max():.3f}]"
)

# %%
# The same draws through probabilistic PCA
# ----------------------------------------
# With ``init='pca'`` the network starts close to probabilistic PCA, whose
# generative model is the same: a standard normal code, decoded by the
# linear map ``U (Lambda - sigma^2)^(1/2)`` plus the mean. ``sample`` draws
# its codes with ``numpy.random.RandomState(0).standard_normal``, so the
# same codes decoded by PCA show what training changed.
pca = PCA(n_components).fit(X)
codes = np.random.RandomState(0).standard_normal((n_samples, n_components))
scales = np.sqrt(pca.explained_variance_ - pca.noise_variance_)
ppca_samples = pca.inverse_transform(codes * scales)

# %%
# The weight of the prior: ``beta``
# ---------------------------------
# The training loss is the negative evidence lower bound, a reconstruction
# term plus ``beta`` times the KL divergence of each row's posterior from
# the prior. ``beta=1`` (the default) is the true ELBO. A larger ``beta``
# pulls the posteriors harder towards the prior: the codes carry less about
# each digit, and the decoder falls back on what all digits share. How much
# the codes keep shows in ``explained_variance_score_``: the fraction of the
# variance that the reconstruction through the posterior mean explains, on
# the rows held out for early stopping.
vae_beta = VariationalAutoencoder(
    n_components,
    beta=4.0,
    loss="bce",
    hidden_layer_sizes=(256, 128),
    max_iter=50,
    random_state=0,
).fit(X)
beta_samples = vae_beta.sample(n_samples, random_state=0)
for name, model in [("beta=1", vae), ("beta=4", vae_beta)]:
    print(f"{name}: explained variance {model.explained_variance_score_:.3f}")


# %%
# Real and generated digits side by side
# --------------------------------------
def mosaic(rows, n_cols=8):
    """Tile 8x8 images into one array, one pixel of white between them."""
    n_rows = -(-len(rows) // n_cols)
    tiled = np.zeros((9 * n_rows - 1, 9 * n_cols - 1))
    for i, row in enumerate(rows):
        r, c = divmod(i, n_cols)
        tiled[9 * r : 9 * r + 8, 9 * c : 9 * c + 8] = row.reshape(8, 8)
    return tiled


panels = [
    ("real digits", X[np.random.RandomState(0).permutation(len(X))[:n_samples]]),
    ("VAE samples (beta=1)", samples),
    ("probabilistic PCA, same codes", ppca_samples),
    ("VAE samples (beta=4)", beta_samples),
]
fig, axes = plt.subplots(2, 2, figsize=(9, 5.5), layout="constrained")
for ax, (title, rows) in zip(axes.ravel(), panels, strict=True):
    ax.imshow(mosaic(rows), cmap="gray_r", vmin=0, vmax=1)
    ax.set(title=title, xticks=[], yticks=[])
plt.show()

# %%
# Many of the VAE's samples read as digits, though softer than the real
# ones: each is the decoder's *mean*, an average over the images the code
# could stand for. Probabilistic PCA turns the same codes into the same
# rough shapes, as expected from where training started, but a little
# greyer and more smudged: training on the ELBO sharpened them.
#
# With ``beta=4`` the printed explained variance is far lower, here even
# slightly below zero: reconstructed from their codes, the held-out rows come
# out no closer than the mean image is, so the codes say next to nothing
# about each digit. Its samples vary less from one draw to the next, and blur
# towards an average digit. A ``beta`` below 1 goes the other way, towards a
# plain autoencoder whose codes follow the prior less closely.
#
# ``n_components=2`` makes the whole latent space visible at once: see
# :ref:`sphx_glr_auto_examples_plot_vae_latent_manifold.py`.

# %%
# Samples in one call
# -------------------
# :class:`~skae.plotting.SamplesDisplay` draws and shows samples in one
# line, over the training data's range. With ``loss='mse'`` the decoder's
# means can leave that range (negative ink); ``clip=True``, passed on to
# ``sample``, clips each pixel to its range in the training data.
SamplesDisplay.from_estimator(vae, n_samples=16, random_state=0)
plt.show()
