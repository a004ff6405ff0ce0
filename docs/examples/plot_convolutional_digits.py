"""
===========================================
Convolutional reconstructions of the digits
===========================================

Images go in as flat rows, like any other scikit-learn data: ``image_shape``
tells the estimator how to fold each row into ``(channels, height, width)``
and switches to a convolutional network. The 8x8 digits are
``image_shape=(1, 8, 8)``. With ``conv_channels=(16, 32)`` the encoder is two
stages of 3x3 convolution and 2x2 max-pooling (8x8 to 4x4 to 2x2), then a
linear layer to the code; the decoder mirrors it with transposed
convolutions.

This example compares its held-out reconstructions with PCA's and the dense
network's at the same code width.
"""

# %%
# Three reducers with 8 components
# --------------------------------
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer
from skae.plotting import ReconstructionDisplay

# Few epochs on purpose: the estimator warns that max_iter was reached.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, random_state=0
)

models = {
    "PCA": PCA(n_components=8),
    "dense": AutoencoderTransformer(
        8, hidden_layer_sizes=(256, 128), max_iter=30, random_state=0
    ),
    "convolutional": AutoencoderTransformer(
        8, image_shape=(1, 8, 8), conv_channels=(16, 32), max_iter=30, random_state=0
    ),
}
for name, model in models.items():
    start = time.perf_counter()
    model.fit(X_train)
    seconds = time.perf_counter() - start
    error = np.mean((X_test - model.inverse_transform(model.transform(X_test))) ** 2)
    print(f"{name:>13}: held-out MSE {error:6.3f}, fit in {seconds:.1f} s")

# %%
# The network
# -----------
# ``module_`` is the fitted :class:`~skae.ConvAutoencoder`. With
# ``init='pca'`` (the default) it has a linear path, PCA's map, beside the
# convolutional layers, whose last layers started at zero.
print(models["convolutional"].module_)

# %%
# Reconstructions
# ---------------
# :class:`~skae.plotting.ReconstructionDisplay` draws test images over their
# reconstructions; it reads the image shape from the estimator.
display = ReconstructionDisplay.from_estimator(
    models["convolutional"], X_test, y_test, n_samples=10
)
display.figure_.suptitle("convolutional autoencoder, 8 components")
display = ReconstructionDisplay.from_estimator(
    models["PCA"], X_test, y_test, n_samples=10
)
display.figure_.suptitle("PCA, 8 components")
plt.show()

# %%
# Larger images
# -------------
# On images this small, and with this few epochs, the dense network
# reconstructs better than the convolutional one here; both beat PCA.
# Convolutions share their weights across positions, which matters more as
# images grow. The same code fits Fashion-MNIST (``image_shape=(1, 28, 28)``, from
# :func:`~skae.fetch_fashion_mnist`) or CIFAR-10 (``(3, 32, 32)``, from
# :func:`~skae.fetch_cifar10`) with the default ``conv_channels=(16, 32,
# 64)``; there a GPU (``device='cuda'``, chosen automatically when present)
# pays off.
