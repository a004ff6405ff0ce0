"""
==========================================
Denoising digits: autoencoder against PCA
==========================================

:class:`~skae.DenoisingAutoencoder` is trained to reconstruct clean rows from
copies corrupted afresh in every batch. At inference no noise is added:
:meth:`~skae.DenoisingAutoencoder.denoise` maps noisy rows to clean ones.
:class:`~skae.plotting.DenoisingDisplay` shows clean, noisy and denoised
images with their peak signal-to-noise ratio (PSNR, higher is better), and
the same display with PCA shows the linear baseline: project onto the
leading components and reconstruct.
"""

# %%
# Train on clean digits, with Gaussian noise in the loop
# ------------------------------------------------------
# ``noise_level`` is in the data's units: the digits are scaled to [0, 1],
# so 0.3 is 30% of the pixel range. ``clip=True`` (the default) keeps the
# corrupted pixels inside the training data's range.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skae import DenoisingAutoencoder
from skae.plotting import DenoisingDisplay

X, _ = load_digits(return_X_y=True)
X = X / 16
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

dae = DenoisingAutoencoder(
    n_components=16,
    noise="gaussian",
    noise_level=0.3,
    random_state=0,
).fit(X_train)
pca = PCA(n_components=16).fit(X_train)

# %%
# Clean, noisy, denoised
# ----------------------
# ``from_estimator`` corrupts the first test rows the way the estimator's
# noise layer does in training (same kind and level), then denoises them.
display = DenoisingDisplay.from_estimator(dae, X_test, random_state=0)
display.figure_.suptitle("DenoisingAutoencoder")
plt.show()

# %%
# PCA, given the same noise
# -------------------------
# PCA has no noise parameters, so they are passed explicitly. Both displays
# use ``random_state=0``: the noisy rows are the same.
display = DenoisingDisplay.from_estimator(
    pca, X_test, noise="gaussian", noise_level=0.3, random_state=0
)
display.figure_.suptitle("PCA, 16 components")
plt.show()

# %%
# Over the whole test set
# -----------------------
# The displays score eight images; here is the PSNR over all test images.
rng = np.random.RandomState(0)
X_noisy = np.clip(X_test + rng.normal(0, 0.3, X_test.shape), 0, 1)


def psnr(X_clean, X_other):
    """PSNR in dB for data in [0, 1]."""
    return 10 * np.log10(1 / np.mean((X_clean - X_other) ** 2))


print(f"noisy:              {psnr(X_test, X_noisy):5.2f} dB")
print(
    f"PCA, 16 components: "
    f"{psnr(X_test, pca.inverse_transform(pca.transform(X_noisy))):5.2f} dB"
)
print(f"denoising AE:       {psnr(X_test, dae.denoise(X_noisy)):5.2f} dB")

# %%
# Light noise: the skip path keeps the detail
# -------------------------------------------
# Under light noise a 16-number code drops more detail than noise. The
# default ``skip='linear'`` adds a linear map from the noisy input to the
# output, started as the best linear denoiser of the training rows, so the
# denoiser does not fall below the noisy input or PCA; ``skip=None`` is the
# code alone.
X_light = np.clip(X_test + rng.normal(0, 0.05, X_test.shape), 0, 1)
for skip in ("linear", None):
    light = DenoisingAutoencoder(
        n_components=16,
        noise_level=0.05,
        skip=skip,
        random_state=0,
    ).fit(X_train)
    print(f"sigma 0.05, skip={skip!r}: {psnr(X_test, light.denoise(X_light)):5.2f} dB")
print(f"sigma 0.05, noisy:        {psnr(X_test, X_light):5.2f} dB")
print(
    f"sigma 0.05, PCA (16):     "
    f"{psnr(X_test, pca.inverse_transform(pca.transform(X_light))):5.2f} dB"
)
display = DenoisingDisplay.from_estimator(
    light, X_test, noise="gaussian", noise_level=0.05, random_state=0
)
display.figure_.suptitle("skip=None under light noise (sigma 0.05)")
plt.show()
