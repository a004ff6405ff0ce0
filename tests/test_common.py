"""scikit-learn's estimator checks, once for every skae estimator."""

import pytest
from sklearn.utils.estimator_checks import (
    check_global_output_transform_pandas,
    check_set_output_transform,
    check_transformer_get_feature_names_out,
    parametrize_with_checks,
)

from skae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    DenoisingAutoencoder,
    VariationalAutoencoder,
)

ESTIMATORS = [
    AutoencoderTransformer(hidden_layer_sizes=(8,), max_iter=3, random_state=0),
    AutoencoderTransformer(
        hidden_layer_sizes=(), init="random", max_iter=3, random_state=0
    ),
    DenoisingAutoencoder(hidden_layer_sizes=(8,), max_iter=3, random_state=0),
    DenoisingAutoencoder(
        noise="masking", noise_level=0.2, init="random", max_iter=3, random_state=0
    ),
    VariationalAutoencoder(hidden_layer_sizes=(8,), max_iter=3, random_state=0),
    VariationalAutoencoder(init="random", beta=0.5, max_iter=3, random_state=0),
    AutoencoderOutlierDetector(
        n_components=1, hidden_layer_sizes=(8,), max_iter=3, random_state=0
    ),
    # A float contamination always flags some training rows; 'auto' flags
    # none where nothing lies far out, as in this barely trained network.
    AutoencoderOutlierDetector(
        n_components=1,
        contamination=0.1,
        hidden_layer_sizes=(8,),
        init="random",
        early_stopping=False,
        max_iter=3,
        random_state=0,
    ),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=repr)
@pytest.mark.parametrize(
    "check",
    [
        check_transformer_get_feature_names_out,
        check_set_output_transform,
        check_global_output_transform_pandas,
    ],
)
def test_output_checks(estimator, check):
    check(type(estimator).__name__, estimator)
