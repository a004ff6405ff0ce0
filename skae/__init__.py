"""Autoencoders with scikit-learn's transformer contract.

skae trains dense and convolutional PyTorch autoencoders through skorch and
exposes them as scikit-learn transformers: a nonlinear drop-in for
:class:`sklearn.decomposition.PCA` in any Pipeline or search.
"""

from skae._networks import ConvAutoencoder, DenseAutoencoder
from skae._training import AutoencoderNet, TrainingDivergedError
from skae.autoencoder import AutoencoderTransformer

__version__ = "0.1.0.dev0"

__all__ = [
    "AutoencoderNet",
    "AutoencoderTransformer",
    "ConvAutoencoder",
    "DenseAutoencoder",
    "TrainingDivergedError",
    "__version__",
]
