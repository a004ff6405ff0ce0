import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.utils import check_random_state
from torch import nn

import skae._base
from skae import (
    AutoencoderTransformer,
    DenoisingAutoencoder,
    DenseAutoencoder,
    VariationalAutoencoder,
)
from skae._losses import RowMeanLoss
from skae._ordering import (
    NestedDropout,
    PrefixConditioned,
    PrefixLoss,
    explained_variance_curve,
    nested_dropout,
    prefix_lengths,
    prefix_weights,
    smallest_prefix,
)
from skae._training import split_rows

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def make_ae(**params):
    defaults = dict(hidden_layer_sizes=(16,), max_iter=3, ordered=True, random_state=0)
    return AutoencoderTransformer(**{**defaults, **params})


def spectrum(n_samples=300, seed=0):
    """Rotated Gaussian rows in 8-D with a clearly decaying spectrum."""
    rng = np.random.RandomState(seed)
    scales = np.array([4.0, 3.0, 2.0, 1.0, 0.3, 0.2, 0.1, 0.05])
    rotation = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    return (rng.normal(size=(n_samples, 8)) * scales) @ rotation


def prefix_explained_variance(model, X, k):
    """Held-out explained variance of the first ``k`` units, through the API."""
    codes = model.transform(X)[:, :k]
    residual = np.sum((X - model.inverse_transform(codes)) ** 2)
    return 1 - residual / np.sum((X - model.mean_) ** 2)


# -------------------------------------------------------------- the layer


@pytest.mark.parametrize("kept", [0, -1, 1.5, True, "2"])
def test_nested_dropout_refuses_a_kept_width_that_is_not_a_count(kept):
    # kept=-1 or 0 decoded every row from no unit, 1.5 kept the first unit
    # only, silently (the network's docstring has users set it).
    layer = NestedDropout(4, ordered=True).eval()
    layer.kept = kept
    with pytest.raises(ValueError, match="kept must be None or an int of at least 1"):
        layer(torch.ones(2, 4))


def test_nested_dropout_keeps_a_prefix_in_eval_and_says_which():
    layer = NestedDropout(4, ordered=True).eval()
    z = torch.arange(1.0, 9.0).reshape(2, 4)
    layer.kept = 4
    assert torch.equal(layer(z), torch.cat([z, torch.ones(2, 4)], dim=1))
    layer.kept = 3
    assert_array_equal(
        layer(z).numpy(), [[1, 2, 3, 0, 1, 1, 1, 0], [5, 6, 7, 0, 1, 1, 1, 0]]
    )


def test_unordered_nested_dropout_is_identity_in_training():
    layer = NestedDropout(4).train()
    z = torch.ones(5, 4)
    assert torch.equal(layer(z), z)


def test_ordered_training_adds_a_prefix_of_each_row():
    layer = NestedDropout(8, ordered=True).train()
    z = torch.ones(64, 8)
    out = layer(z)
    assert out.shape == (128, 16)
    codes, mask = out[:, :8], out[:, 8:]
    assert torch.equal(codes[:64], z) and torch.equal(mask[:64], z)
    lengths = codes[64:].sum(dim=1).long()
    # Each row keeps units 0..k-1 and zeroes the rest; the mask says which.
    assert torch.equal(codes[64:], (torch.arange(8) < lengths[:, None]).float())
    assert torch.equal(mask[64:], codes[64:])
    assert torch.equal(lengths, prefix_lengths(64, 8, "cpu"))


def test_ordered_layer_scores_the_prefixes_in_eval_until_one_is_kept():
    # The held-out loss early stopping watches is the loss training lowers.
    layer = NestedDropout(8, ordered=True)
    z = torch.randn(64, 8)
    assert torch.equal(layer.eval()(z), layer.train()(z))


def test_prefix_lengths_spread_log_uniformly():
    lengths = prefix_lengths(1000, 31, "cpu")
    assert lengths.min() == 1 and lengths.max() == 31
    # log2(32) = 5 octaves: about a fifth of the rows in each.
    counts = torch.bincount(torch.log2(lengths.float()).long())
    assert torch.all((counts > 150) & (counts < 250))


@pytest.mark.parametrize("n_rows", [32, 33, 67, 75, 101])
def test_a_batch_of_at_least_a_row_per_unit_has_every_length(n_rows):
    # Log-uniform positions alone skipped 27 and 31 in 75 rows of 32 units:
    # those prefixes were never trained.
    lengths = prefix_lengths(n_rows, 32, "cpu")
    assert torch.equal(torch.unique(lengths), torch.arange(1, 33))
    assert torch.all(lengths[1:] >= lengths[:-1])
    if n_rows >= 64:
        # Room to spare: still shortest most often.
        counts = torch.bincount(lengths)[1:]
        assert counts[0] == counts.max()


def test_a_batch_of_fewer_rows_than_units_stays_log_uniform():
    assert prefix_lengths(10, 32, "cpu").tolist() == [1, 1, 2, 3, 4, 6, 9, 13, 19, 27]


@pytest.mark.parametrize("outside", [0.0, 2.0])
def test_prefix_weights_follow_pca_residual_variance(outside):
    X = torch.as_tensor(spectrum(2000), dtype=torch.float32)
    weights = prefix_weights(X, 3, outside)
    residual = np.cumsum(PCA().fit(X.numpy()).explained_variance_[::-1])[::-1]
    # Variance outside the rows' columns (input axes) adds to every residual.
    residual = residual + outside * len(X) / (len(X) - 1)
    total = residual[0]
    floored = residual[1:4] + 1e-3 * total
    assert_allclose(weights.numpy(), np.sqrt(floored[-1] / floored), rtol=1e-3)


def test_prefix_loss_weighs_the_prefixes_twice_the_whole_codes():
    loss = PrefixLoss(RowMeanLoss(torch.nn.MSELoss()), torch.tensor([0.5, 1.0]))
    rows = torch.zeros(2, 3)
    whole, prefixes = torch.ones(2, 3), torch.full((2, 3), 2.0)
    # Two rows: prefix lengths 1 and 2, weights 0.5 and 1.
    expected = (1.0 + 2 * (0.5 * 4 + 1.0 * 4) / 2) / 3
    assert_allclose(loss(torch.cat([whole, prefixes]), rows).item(), expected)
    assert_allclose(loss(whole, rows).item(), 1.0)


def test_network_decodes_through_the_layer():
    net = DenseAutoencoder(6, 3, (8,), ordered=True).eval()
    codes = torch.randn(5, 3)
    net.nested_dropout.kept = 1
    expected = net.decode(torch.cat([codes[:, :1], torch.zeros(5, 2)], dim=1))
    assert torch.equal(net.decode(codes), expected)


def test_decoder_tells_a_dropped_unit_from_a_zero_one():
    net = DenseAutoencoder(6, 3, (8,), ordered=True).eval()
    codes = torch.cat([torch.randn(5, 1), torch.zeros(5, 2)], dim=1)
    net.nested_dropout.kept = 3
    whole = net.decode(codes)
    net.nested_dropout.kept = 1
    assert not torch.allclose(net.decode(codes), whole)


def test_an_ordered_decoder_starts_as_the_plain_one():
    # Gains and shifts start at zero: the modulated layers compute what the
    # plain Sequential of the same layers does.
    net = DenseAutoencoder(6, 3, (8, 4), ordered=True)
    assert isinstance(net.decoder, PrefixConditioned)
    assert isinstance(net.decoder[-1], nn.Linear)
    x = net.nested_dropout.eval()(torch.randn(5, 3))
    plain = nn.Sequential(*net.decoder)
    assert torch.equal(net.decoder(x), plain(x))
    # Two hidden layers, each with a gain and a shift per prefix length.
    shapes = {
        name: tuple(p.shape)
        for name, p in net.decoder.named_parameters()
        if name.startswith(("gain", "shift"))
    }
    assert shapes == {
        "gain_0": (4, 4),
        "shift_0": (4, 4),
        "gain_1": (4, 8),
        "shift_1": (4, 8),
    }
    assert not isinstance(DenseAutoencoder(6, 3, (8,)).decoder, PrefixConditioned)


def test_the_decoder_modulates_each_row_by_its_prefix_length():
    torch.manual_seed(0)
    decoder = PrefixConditioned([nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2)], 2)
    with torch.no_grad():
        decoder.gain_0[1] = 1.0  # doubles the hidden units at length 1
        decoder.shift_0[2] = 0.5  # shifts them at length 2
    codes = torch.randn(3, 2)
    for length, gain, shift in [(1, 2.0, 0.0), (2, 1.0, 0.5)]:
        mask = (torch.arange(2) < length).float().expand(3, 2)
        x = torch.cat([codes * mask, mask], dim=1)
        hidden = decoder[0](x) * gain + shift
        expected = decoder[2](decoder[1](hidden))
        assert torch.allclose(decoder(x), expected)
    # Trained: each row's length gets the gradient, the others none.
    mask = torch.tensor([[1.0, 0.0]] * 3)
    decoder(torch.cat([codes * mask, mask], dim=1)).sum().backward()
    assert decoder.gain_0.grad[1].abs().sum() > 0
    assert decoder.gain_0.grad[[0, 2]].abs().sum() == 0


def test_curve_and_smallest_prefix():
    curve = explained_variance_curve(np.array([6.0, 3.0, 1.0]), 10.0)
    assert_allclose(curve, [0.4, 0.7, 0.9])
    assert smallest_prefix(curve, 0.7) == 2
    assert smallest_prefix(curve, 0.95) == 3
    assert_array_equal(explained_variance_curve(np.ones(2), 0.0), [0, 0])


# -------------------------------------------------- the explained variance


def test_ratio_sums_to_the_explained_variance_score():
    ae = make_ae(n_components=4).fit(spectrum())
    assert ae.explained_variance_ratio_.shape == (4,)
    assert_allclose(ae.explained_variance_ratio_.sum(), ae.explained_variance_score_)
    held_out_variance = ae.explained_variance_ / ae.explained_variance_ratio_
    assert_allclose(held_out_variance, held_out_variance[0])


@pytest.mark.parametrize("input_components", [None, 24])
def test_cumulative_ratio_is_the_held_out_explained_variance_of_each_prefix(
    digits, input_components
):
    X = digits[0]
    ae = AutoencoderTransformer(
        8,
        hidden_layer_sizes=(64,),
        ordered=True,
        input_components=input_components,
        max_iter=10,
        random_state=0,
    ).fit(X)
    # The rows early stopping held out: the fit's first draw from its seed.
    _, valid_idx = split_rows(len(X), True, 0.1, check_random_state(0))
    cumulative = np.cumsum(ae.explained_variance_ratio_)
    for k in range(1, 9):
        expected = prefix_explained_variance(ae, X[valid_idx], k)
        assert_allclose(cumulative[k - 1], expected, rtol=1e-4)


def test_without_early_stopping_the_curve_is_on_the_training_rows():
    X = spectrum(200)
    ae = make_ae(n_components=3, early_stopping=False).fit(X)
    for k in range(1, 4):
        assert_allclose(
            ae.explained_variance_ratio_[:k].sum(),
            prefix_explained_variance(ae, X, k),
            rtol=1e-4,
        )


def test_the_curve_is_measured_on_at_most_curve_rows(monkeypatch):
    monkeypatch.setattr(skae._base, "CURVE_ROWS", 50)
    X = spectrum(200)
    ae = make_ae(n_components=3, early_stopping=False).fit(X)
    every_fourth = X[::4]
    assert_allclose(
        ae.explained_variance_score_,
        prefix_explained_variance(ae, every_fourth, 3),
        rtol=1e-4,
    )


@pytest.mark.parametrize(
    "estimator",
    [
        DenoisingAutoencoder(3, hidden_layer_sizes=(16,), max_iter=2, random_state=0),
        VariationalAutoencoder(3, hidden_layer_sizes=(16,), max_iter=2, random_state=0),
    ],
    ids=["denoising", "variational"],
)
def test_every_transformer_has_the_spectrum(estimator):
    estimator.fit(spectrum())
    assert estimator.explained_variance_ratio_.shape == (3,)
    assert_allclose(
        estimator.explained_variance_ratio_.sum(), estimator.explained_variance_score_
    )


# -------------------------------------------------------------- prefixes


def test_inverse_transform_of_a_prefix_decodes_the_missing_units_as_dropped():
    X = spectrum()
    # Three epochs of a planned run (learning_rate='auto') do not improve on
    # the PCA start, whose decoder is kept and ignores the mask.
    ae = make_ae(n_components=4, learning_rate="adaptive").fit(X)
    assert ae.best_epoch_ > 0
    codes = ae.transform(X[:5])
    short = ae.inverse_transform(codes[:, :2])
    assert_allclose(short, ae.truncate(2).inverse_transform(codes[:, :2]))
    # Dropped, not zero: the decoder sees which units it lacks.
    padded = np.hstack([codes[:, :2], np.zeros((5, 2))])
    assert not np.allclose(short, ae.inverse_transform(padded))
    assert nested_dropout(ae.module_).kept == 4


def test_inverse_transform_rejects_wider_codes():
    ae = make_ae(n_components=2).fit(spectrum())
    with pytest.raises(
        ValueError,
        match=r"X has 3 features, but inverse_transform expects codes of width "
        r"n_components_=2 or fewer, as the model is ordered\.",
    ):
        ae.inverse_transform(np.zeros((4, 3)))


def test_unordered_inverse_transform_rejects_narrower_codes():
    ae = make_ae(n_components=3, ordered=False).fit(spectrum())
    with pytest.raises(
        ValueError,
        match=r"X has 2 features, but inverse_transform expects codes of width "
        r"n_components_=3\.",
    ):
        ae.inverse_transform(np.zeros((4, 2)))


def test_truncate_is_the_prefix_model():
    X = spectrum()
    ae = make_ae(n_components=4).fit(X)
    small = ae.truncate(2)
    assert small.n_components == small.n_components_ == 2
    assert ae.n_components_ == 4
    assert_allclose(small.transform(X), ae.transform(X)[:, :2])
    assert_allclose(
        small.inverse_transform(small.transform(X)),
        ae.inverse_transform(ae.transform(X)[:, :2]),
    )
    assert_allclose(small.explained_variance_ratio_, ae.explained_variance_ratio_[:2])
    assert_allclose(
        small.explained_variance_score_, ae.explained_variance_ratio_[:2].sum()
    )
    assert_allclose(
        small.score(X),
        -np.mean((X - small.inverse_transform(small.transform(X))) ** 2),
        rtol=1e-5,
    )
    # The copy is its own model: the original is untouched.
    assert_allclose(ae.transform(X[:3]).shape, (3, 4))
    assert make_pipeline(small).transform(X).shape == (len(X), 2)


def test_truncated_model_shares_no_array_with_the_original():
    ae = make_ae(n_components=4).fit(spectrum())
    ratio = ae.explained_variance_ratio_.copy()
    variance = ae.explained_variance_.copy()
    small = ae.truncate(2)
    small.explained_variance_ratio_ *= 100  # as percentages
    small.explained_variance_[:] = 0
    assert_array_equal(ae.explained_variance_ratio_, ratio)
    assert_array_equal(ae.explained_variance_, variance)


def test_truncated_model_keeps_its_width_through_partial_fit():
    X = spectrum()
    small = make_ae(n_components=4).fit(X).truncate(2)
    small.partial_fit(X)
    assert small.n_components_ == 2
    assert small.transform(X).shape == (len(X), 2)
    assert small.explained_variance_ratio_.shape == (2,)


def test_only_estimators_with_ordered_truncate():
    assert not hasattr(VariationalAutoencoder(), "truncate")
    assert "ordered" not in VariationalAutoencoder().get_params()
    assert DenoisingAutoencoder(ordered=True).get_params()["ordered"]


@pytest.mark.parametrize(
    "k, error, message",
    [
        (0, ValueError, r"n_components=0 must be in \[1, n_components_=4\]\."),
        (5, ValueError, r"n_components=5 must be in \[1, n_components_=4\]\."),
        (2.0, TypeError, r"n_components must be an int, got 2\.0\."),
    ],
)
def test_truncate_rejects_bad_widths(k, error, message):
    ae = make_ae(n_components=4).fit(spectrum())
    with pytest.raises(error, match=message):
        ae.truncate(k)


def test_truncate_needs_an_ordered_model():
    ae = make_ae(n_components=4, ordered=False).fit(spectrum())
    with pytest.raises(ValueError, match=r"truncate needs an ordered model"):
        ae.truncate(2)


# ----------------------------------------------------- float n_components


def test_fraction_keeps_the_shortest_prefix_that_reaches_it():
    X = spectrum()
    ae = make_ae(n_components=0.9, max_iter=5).fit(X)
    assert ae.n_components_pca_ == PCA(n_components=0.9).fit(X).n_components_
    assert 1 <= ae.n_components_ <= ae.n_components_pca_
    assert ae.transform(X).shape == (len(X), ae.n_components_)
    assert ae.explained_variance_ratio_.shape == (ae.n_components_,)
    full = nested_dropout(ae.module_).n_units
    assert full == ae.n_components_pca_
    # The kept prefix reaches the fraction on the held-out rows, the one
    # before does not.
    assert ae.explained_variance_score_ >= 0.9 or ae.n_components_ == full
    assert ae.explained_variance_score_ - ae.explained_variance_ratio_[-1] < 0.9


def test_fraction_without_ordering_is_pca_count():
    X = spectrum()
    ae = make_ae(n_components=0.9, ordered=False).fit(X)
    assert ae.n_components_ == ae.n_components_pca_
    assert ae.n_components_ == PCA(n_components=0.9).fit(X).n_components_


def test_int_n_components_has_no_pca_count():
    assert make_ae(n_components=2).fit(spectrum()).n_components_pca_ is None


# ------------------------------------------------- code written for PCA


def test_plot_digits_pipe_runs_with_pca_replaced(digits):
    # scikit-learn's examples/compose/plot_digits_pipe.py, reduced (fewer
    # rows, a smaller grid, two folds, a few epochs) with PCA replaced by
    # AutoencoderTransformer and nothing else changed, except that the
    # best classifier per width is found with pandas instead of polars.
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pca = AutoencoderTransformer(max_iter=3, random_state=0)
    scaler = StandardScaler()
    logistic = LogisticRegression(max_iter=10000, tol=0.1)
    pipe = Pipeline(steps=[("scaler", scaler), ("pca", pca), ("logistic", logistic)])

    X_digits, y_digits = digits[0][:400], digits[1][:400]
    param_grid = {
        "pca__n_components": [5, 15],
        "logistic__C": np.logspace(-4, 4, 2),
    }
    search = GridSearchCV(pipe, param_grid, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X_digits, y_digits)
        pca.fit(X_digits)

    fig, (ax0, ax1) = plt.subplots(nrows=2, sharex=True, figsize=(6, 6))
    ax0.plot(
        np.arange(1, pca.n_components_ + 1),
        pca.explained_variance_ratio_,
        "+",
        linewidth=2,
    )
    ax0.set_ylabel("PCA explained variance ratio")
    ax0.axvline(
        search.best_estimator_.named_steps["pca"].n_components,
        linestyle=":",
        label="n_components chosen",
    )
    ax0.legend(prop=dict(size=12))

    components_col = "param_pca__n_components"
    results = pd.DataFrame(search.cv_results_)
    best_clfs = results.loc[results.groupby(components_col)["mean_test_score"].idxmax()]
    ax1.errorbar(
        best_clfs[components_col],
        best_clfs["mean_test_score"],
        yerr=best_clfs["std_test_score"],
    )
    ax1.set_ylabel("Classification accuracy (val)")
    ax1.set_xlabel("n_components")
    plt.xlim(-1, 70)
    plt.tight_layout()
    plt.close(fig)
    chosen = search.best_estimator_.named_steps["pca"]
    assert chosen.explained_variance_ratio_.shape == (chosen.n_components_,)


# ----------------------------------------------------------- edge cases


def test_prefix_weights_of_constant_rows_are_finite():
    # No variance to explain: every prefix weighs the same.
    weights = prefix_weights(torch.zeros(10, 3), 2)
    assert_array_equal(weights.numpy(), [1.0, 1.0])


# PCA's start divides by the zero variance of constant rows.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_ordered_fit_on_constant_rows():
    X = np.ones((50, 4))
    ae = make_ae(n_components=2, max_iter=2).fit(X)
    assert_array_equal(ae.explained_variance_ratio_, [0.0, 0.0])
    assert_allclose(ae.inverse_transform(ae.transform(X)), X, atol=1e-5)


# -------------------------------- the fitted network says if it is ordered


def test_unordered_fit_cannot_be_truncated_after_set_params():
    # ordered shapes the training: set after fit, it leaves the fitted code
    # unordered, whose prefixes are no codes.
    X = spectrum()
    ae = make_ae(n_components=4, ordered=False).fit(X).set_params(ordered=True)
    with pytest.raises(ValueError, match=r"truncate needs an ordered model"):
        ae.truncate(2)
    with pytest.raises(ValueError, match=r"expects codes of width n_components_=4\."):
        ae.inverse_transform(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"not trained in order"):
        ae.set_params(n_components=2).partial_fit(X)


def test_ordered_fit_keeps_its_prefixes_after_set_params():
    X = spectrum()
    ae = make_ae(n_components=4).fit(X).set_params(ordered=False)
    assert ae.truncate(2).transform(X).shape == (len(X), 2)
    assert ae.inverse_transform(np.zeros((3, 2))).shape == (3, 8)
    ae.set_params(n_components=2).partial_fit(X)
    assert ae.n_components_ == 2


# ------------------------------------------------ truncation as PCA users


def test_truncated_model_clones_pickles_and_names_its_features():
    import pickle

    from sklearn.base import clone

    X = spectrum()
    small = make_ae(n_components=4).fit(X).truncate(2)
    # Truncation sets the parameter: a clone fits a two-unit model anew.
    assert clone(small).get_params()["n_components"] == 2
    assert_array_equal(
        small.get_feature_names_out(),
        ["autoencodertransformer0", "autoencodertransformer1"],
    )
    loaded = pickle.loads(pickle.dumps(small))
    assert loaded.n_components_ == 2
    assert_allclose(loaded.transform(X[:5]), small.transform(X[:5]))
    assert_allclose(
        loaded.inverse_transform(loaded.transform(X[:5])),
        small.inverse_transform(small.transform(X[:5])),
    )


def test_frozen_truncated_model_keeps_its_fit_in_a_pipeline():
    # A Pipeline's fit trains its steps anew, a truncated model at its width
    # from scratch; FrozenEstimator, as the docs advise, keeps the prefix.
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LinearRegression

    X = spectrum()
    small = make_ae(n_components=4, init="random").fit(X).truncate(2)
    pipe = make_pipeline(FrozenEstimator(small), LinearRegression()).fit(X, X[:, 0])
    assert_array_equal(pipe[0].transform(X), small.transform(X))
    assert_array_equal(pipe[:-1].get_feature_names_out(), small.get_feature_names_out())
    refitted = make_pipeline(small, LinearRegression()).fit(X, X[:, 0])
    assert nested_dropout(refitted[0].module_).n_units == 2


def test_set_params_n_components_then_partial_fit_keeps_a_prefix():
    X = spectrum()
    ae = make_ae(n_components=4).fit(X)
    codes = ae.transform(X)
    ae.set_params(n_components=2).partial_fit(X)
    assert ae.n_components_ == 2
    assert ae.transform(X).shape == (len(X), 2)
    assert ae.explained_variance_ratio_.shape == (2,)
    assert not np.allclose(ae.transform(X), codes[:, :2])  # trained on


def test_set_params_int_then_partial_fit_drops_the_pca_count_as_truncate_does():
    # Two routes to the same prefix model: n_components_pca_ is None for an
    # int n_components, whichever route set it.
    X = spectrum()
    ae = make_ae(n_components=0.99).fit(X)
    assert ae.n_components_pca_ is not None
    assert ae.truncate(1).n_components_pca_ is None
    ae.set_params(n_components=1).partial_fit(X)
    assert ae.n_components_ == 1
    assert ae.n_components_pca_ is None


def test_grid_search_over_ordered_widths_keeps_each_models_spectrum():
    from sklearn.model_selection import GridSearchCV

    X = spectrum(120)
    search = GridSearchCV(make_ae(max_iter=2), {"n_components": [1, 3, 0.9]}, cv=2).fit(
        X
    )
    best = search.best_estimator_
    # Reconstruction prefers the widest code; its spectrum is its own width.
    assert best.explained_variance_ratio_.shape == (best.n_components_,)
    assert_allclose(
        best.explained_variance_ratio_.sum(), best.explained_variance_score_
    )


@pytest.mark.parametrize("first", ["fit", "partial_fit"])
def test_a_fraction_keeps_the_fitted_width_through_partial_fit(first):
    # The fraction picks the width when the model is set up; a chunk unlike
    # the first (rows along its first principal axis, which one unit
    # explains to 0.9) must not change what transform returns.
    X = spectrum()
    ae = make_ae(n_components=0.9)
    getattr(ae, first)(X)
    width = ae.n_components_
    axis = PCA(1).fit(X).components_[0]
    line = X.mean(axis=0) + np.linspace(-6, 6, 150)[:, None] * axis
    for chunk in (X[:150], line, X[150:]):
        ae.partial_fit(chunk)
        assert ae.n_components_ == width
        assert ae.transform(X).shape == (len(X), width)
        assert ae.explained_variance_ratio_.shape == (width,)
