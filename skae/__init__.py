"""Autoencoders with scikit-learn's transformer contract.

skae trains dense and convolutional PyTorch autoencoders through skorch and
exposes them as scikit-learn transformers: a nonlinear drop-in for
:class:`sklearn.decomposition.PCA` in any Pipeline or search.
"""

from skae._networks import ConvAutoencoder, DenseAutoencoder
from skae._training import AutoencoderNet, TrainingDivergedError
from skae.autoencoder import AutoencoderTransformer
from skae.datasets import (
    fetch_cifar10,
    fetch_fashion_mnist,
    fetch_mnist,
    get_data_home,
    make_embedded_moons,
    make_embedded_swiss_roll,
)
from skae.denoising import DenoisingAutoencoder
from skae.outlier import AutoencoderOutlierDetector
from skae.variational import VariationalAutoencoder

__version__ = "0.1.0.dev0"

__all__ = [
    "AutoencoderNet",
    "AutoencoderOutlierDetector",
    "AutoencoderTransformer",
    "ConvAutoencoder",
    "DenoisingAutoencoder",
    "DenseAutoencoder",
    "TrainingDivergedError",
    "VariationalAutoencoder",
    "__version__",
    "fetch_cifar10",
    "fetch_fashion_mnist",
    "fetch_mnist",
    "get_data_home",
    "make_embedded_moons",
    "make_embedded_swiss_roll",
]
