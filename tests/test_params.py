import warnings

import numpy as np
import pytest

from skae import AutoencoderOutlierDetector
from skae._params import resolve_n_components


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_components", [0.5, 0.99])
def test_a_fraction_of_rows_all_alike_counts_one_component_without_warning(
    n_components, dtype
):
    # Rows all alike have a total variance of 0, which PCA divides by for
    # the explained_variance_ratio_ a fraction is counted with: NumPy's
    # "invalid value encountered in divide" leaked from inside scikit-learn.
    X = np.full((30, 5), 0.1, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_n_components(n_components, "pca", X, 30) == 1


def test_detector_with_its_default_fraction_fits_rows_all_alike_without_warning():
    X = np.full((30, 5), 2.0, dtype=np.float32)
    detector = AutoencoderOutlierDetector(n_components=0.8, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detector.fit(X)
    assert detector.n_components_ == 1
