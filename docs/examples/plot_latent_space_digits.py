"""
=====================================
A 2-D map of the digits against PCA's
=====================================

With ``n_components=2`` the code is a map of the data.
:class:`~skae.plotting.LatentSpaceDisplay` draws the autoencoder's codes
beside PCA's, both coloured by the digit's label. PCA's map is the best
*linear* projection and mixes most classes; the autoencoder's code, trained
only to reconstruct the images (it never sees the labels), pulls several
digits apart.
"""

# %%
# Fit
# ---
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer
from skae.plotting import LatentSpaceDisplay

# Few epochs on purpose: the estimator warns that max_iter was reached.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
ae = AutoencoderTransformer(
    n_components=2, hidden_layer_sizes=(256, 128), max_iter=40, random_state=0
).fit(X)

# %%
# Draw the two maps
# -----------------
# ``from_estimator`` encodes ``X`` and, with ``compare_pca=True`` (the
# default), fits ``PCA(n_components=2)`` on the same rows for the second
# panel.
display = LatentSpaceDisplay.from_estimator(ae, X, y)
display.axes_[0].set_title("autoencoder")
display.axes_[1].set_title("PCA")
plt.show()

# %%
# The map is a by-product: nothing asks the code to separate classes, and
# a longer fit (the default ``max_iter='auto'`` allows up to 200 epochs on
# these rows) changes the picture. For a classifier, pick ``n_components``
# by cross-validating the whole pipeline
# (see :ref:`sphx_glr_auto_examples_plot_grid_search_n_components.py`).
