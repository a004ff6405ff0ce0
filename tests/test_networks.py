import math
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.decomposition import PCA
from torch import nn

from skae import ConvAutoencoder, DenseAutoencoder
from skae._networks import ACTIVATIONS, pca_start, ppca_start


def rows(n_rows, n_features, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n_rows, n_features, generator=generator)


def layers(module, kind):
    return [m for m in module.modules() if isinstance(m, kind)]


# --------------------------------------------------------------------- dense


@pytest.mark.parametrize("hidden_layer_sizes", [(), (16,), (32, 8)])
@pytest.mark.parametrize("n_features, n_components", [(8, 2), (5, 5), (3, 7)])
@pytest.mark.parametrize("linear_path", [False, True])
def test_dense_shapes(hidden_layer_sizes, n_features, n_components, linear_path):
    net = DenseAutoencoder(
        n_features, n_components, hidden_layer_sizes, linear_path=linear_path
    )
    x = rows(4, n_features)
    assert net.encode(x).shape == (4, n_components)
    assert net.decode(net.encode(x)).shape == (4, n_features)
    assert net(x).shape == (4, n_features)


def test_dense_layers_mirror_the_sizes():
    net = DenseAutoencoder(10, 2, hidden_layer_sizes=(8, 4), activation="tanh")
    widths = [(m.in_features, m.out_features) for m in layers(net.encoder, nn.Linear)]
    assert widths == [(10, 8), (8, 4), (4, 2)]
    widths = [(m.in_features, m.out_features) for m in layers(net.decoder, nn.Linear)]
    assert widths == [(2, 4), (4, 8), (8, 10)]
    # Activations between layers, none after the last.
    assert len(layers(net.encoder, nn.Tanh)) == 2
    assert isinstance(net.encoder[-1], nn.Linear)
    assert net.encoder_linear is None
    assert net.decoder_linear is None


@pytest.mark.parametrize(
    "activation, kind",
    [
        ("relu", nn.ReLU),
        ("silu", nn.SiLU),
        ("elu", nn.ELU),
        ("tanh", nn.Tanh),
        ("logistic", nn.Sigmoid),
    ],
)
def test_dense_activation(activation, kind):
    net = DenseAutoencoder(6, 2, hidden_layer_sizes=(4,), activation=activation)
    assert len(layers(net, kind)) == 2


def test_dense_linear_without_hidden_layers_has_no_residual():
    net = DenseAutoencoder(6, 2, linear_path=True)
    assert net.encoder is None
    assert net.decoder is None
    x = rows(5, 6)
    torch.testing.assert_close(net(x), net.decoder_linear(net.encoder_linear(x)))


@pytest.mark.parametrize("hidden_layer_sizes", [(16,), (8, 4)])
def test_dense_linear_path_starts_exactly_linear(hidden_layer_sizes):
    torch.manual_seed(0)
    net = DenseAutoencoder(6, 2, hidden_layer_sizes, linear_path=True)
    x = rows(5, 6)
    z = net.encoder_linear(x)
    assert torch.equal(net.encode(x), z)
    assert torch.equal(net.encoder(x), torch.zeros(5, 2))
    assert torch.equal(net.decoder(z), torch.zeros(5, 6))
    assert torch.equal(net(x), net.decoder_linear(z))


def test_dense_residual_trains_away_from_zero():
    # The zeroed layers still get gradients: the earlier layers are random.
    torch.manual_seed(0)
    net = DenseAutoencoder(6, 2, (8,), linear_path=True)
    x = rows(16, 6)
    ((net(x) - x) ** 2).mean().backward()
    assert net.encoder[-1].weight.grad.abs().sum() > 0
    assert net.decoder[-1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("start", [pca_start, ppca_start])
@pytest.mark.parametrize("shape", [(100, 600), (700, 600), (600, 100)])
def test_pca_start_is_exact_pca(start, shape):
    # Over 500 rows or features, and fewer than ten rows per feature: PCA's
    # 'auto' solver is randomized there, and on a flat spectrum misses the
    # leading axes.
    X = np.random.RandomState(0).normal(size=shape)
    net = DenseAutoencoder(shape[1], 5, linear_path=True)
    start(net, X, 5, loss="mse", random_state=0)
    weight = net.encoder_linear.weight.detach().double().numpy()
    # The encoder's rows span the exact PCA's leading axes.
    axes = np.linalg.qr(weight.T)[0]
    exact = PCA(5, svd_solver="full").fit(X).components_
    assert_allclose(axes @ axes.T, exact.T @ exact, atol=1e-5)


@pytest.mark.parametrize("start", [pca_start, ppca_start])
def test_pca_start_refuses_an_unknown_loss(start):
    # Any loss but 'mse' silently got the logit decoder of 'bce'.
    X = np.random.RandomState(0).rand(20, 6)
    net = DenseAutoencoder(6, 2, linear_path=True)
    with pytest.raises(ValueError, match=r"^loss must be 'mse' or 'bce', got 'MSE'\.$"):
        start(net, X, 2, loss="MSE", random_state=0)


@pytest.mark.parametrize("start", [pca_start, ppca_start])
def test_pca_start_needs_a_linear_path(start):
    # It failed with "'NoneType' object has no attribute 'weight'".
    X = np.random.RandomState(0).rand(20, 6)
    with pytest.raises(
        ValueError,
        match=r"^DenseAutoencoder has no linear path to set: build it with "
        r"linear_path=True\.$",
    ):
        start(DenseAutoencoder(6, 2), X, 2, loss="mse", random_state=0)


@pytest.mark.parametrize("start", [pca_start, ppca_start])
def test_pca_start_on_one_row_is_finite_and_silent(start):
    # Early stopping's split of two rows leaves one to train: PCA's variances
    # are then 0 / 0, and its division warned "invalid value encountered in
    # divide" from inside scikit-learn.
    X = np.random.RandomState(0).normal(size=(1, 6))
    net = DenseAutoencoder(6, 1, linear_path=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        start(net, X, 1, loss="mse", random_state=0)
    assert all(torch.isfinite(p).all() for p in net.parameters())


# ---------------------------------------------------------------------- conv


@pytest.mark.parametrize(
    "image_shape, channels",
    [
        ((1, 28, 28), (16, 32, 64)),
        ((1, 28, 28), (4, 8)),
        ((1, 8, 8), (4, 8)),
        ((1, 8, 8), (4, 8, 16)),
        ((3, 32, 32), (16, 32, 64)),
        ((3, 32, 32), (8,)),
        ((1, 7, 9), (4, 8)),
        ((1, 7, 9), (4,)),
        ((2, 5, 6), (3, 3)),
    ],
    ids=lambda value: "x".join(map(str, value)),
)
@pytest.mark.parametrize("linear_path", [False, True])
def test_conv_shapes(image_shape, channels, linear_path):
    n_features = math.prod(image_shape)
    net = ConvAutoencoder(image_shape, 3, channels=channels, linear_path=linear_path)
    x = rows(2, n_features)
    assert net.encode(x).shape == (2, 3)
    assert net.decoder(net.encode(x)).shape == (2, n_features)
    assert net(x).shape == (2, n_features)


def test_conv_default_layout_for_cifar():
    net = ConvAutoencoder((3, 32, 32), 10)
    convs = layers(net.encoder, nn.Conv2d)
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (3, 16),
        (16, 32),
        (32, 64),
    ]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert len(layers(net.encoder, nn.MaxPool2d)) == 3
    (to_code,) = layers(net.encoder, nn.Linear)
    assert (to_code.in_features, to_code.out_features) == (64 * 4 * 4, 10)

    (from_code,) = layers(net.decoder, nn.Linear)
    assert (from_code.in_features, from_code.out_features) == (10, 64 * 4 * 4)
    ups = layers(net.decoder, nn.ConvTranspose2d)
    assert [(u.in_channels, u.out_channels) for u in ups] == [
        (64, 32),
        (32, 16),
        (16, 3),
    ]
    assert all(u.stride == (2, 2) for u in ups)
    # The bottleneck map is 64x4x4.
    bottleneck = net.encoder[:-2](rows(2, 3 * 32 * 32))
    assert bottleneck.shape == (2, 64, 4, 4)
    assert net.encoder_linear is None
    assert net.decoder_linear is None
    assert not layers(net, nn.Sigmoid)


def test_conv_transposed_stages_restore_each_pooled_size():
    net = ConvAutoencoder((1, 28, 28), 2, channels=(4, 8, 16))
    x = net.decoder[:2](torch.zeros(1, 2))
    sizes = [tuple(x.shape[-2:])]
    for module in net.decoder[2:]:
        x = module(x)
        if isinstance(module, nn.ConvTranspose2d):
            sizes.append(tuple(x.shape[-2:]))
    assert sizes == [(3, 3), (7, 7), (14, 14), (28, 28)]


def test_conv_rows_are_channel_first_images():
    # Entry c * H * W + h * W + w of a row is pixel (h, w) of channel c, going
    # in and coming out, also in the channels-last layout the estimators use.
    torch.manual_seed(0)
    net = ConvAutoencoder((2, 5, 7), 3, channels=(4,))
    net = net.to(memory_format=torch.channels_last)
    x = torch.zeros(1, 70, requires_grad=True)
    # The first convolution's output at (2, 3) sees the 3x3 square around it.
    net.encoder[:2](x)[0, :, 2, 3].sum().backward()
    seen = torch.zeros(5, 7, dtype=torch.bool)
    seen[1:4, 2:5] = True
    assert torch.equal(x.grad.reshape(2, 5, 7).abs().sum(0) > 0, seen)
    # Output entry 52 is pixel (2, 3) of channel 1; the stride-2 transposed
    # convolution (no padding: odd sides) makes it from cells (0, 1), (1, 1).
    z = torch.zeros(1, 4, 2, 3, requires_grad=True)
    net.decoder[2:](z)[0, 1 * 35 + 2 * 7 + 3].backward()
    made = torch.zeros(2, 3, dtype=torch.bool)
    made[0:2, 1] = True
    assert torch.equal(z.grad.abs().sum((0, 1)) > 0, made)


@pytest.mark.parametrize("image_shape", [(1, 8, 8), (3, 32, 32), (1, 28, 28)])
def test_conv_linear_path_starts_exactly_linear(image_shape):
    torch.manual_seed(0)
    net = ConvAutoencoder(image_shape, 4, channels=(4, 8), linear_path=True)
    x = rows(3, math.prod(image_shape))
    z = net.encoder_linear(x)
    assert torch.equal(net.encode(x), z)
    assert torch.equal(net(x), net.decoder_linear(z))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_conv_sigmoid_output_in_unit_interval(activation):
    torch.manual_seed(0)
    net = ConvAutoencoder(
        (1, 8, 8), 2, channels=(4,), activation=activation, out_activation="sigmoid"
    )
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(50)
        out = net(10 * rows(16, 64) - 5)
    assert out.min() >= 0
    assert out.max() <= 1
    assert isinstance(net.decoder[-2], nn.Sigmoid)


@pytest.mark.parametrize(
    "params, message",
    [
        (
            dict(image_shape=(1, 2, 3), channels=(4, 8)),
            r"^image_shape=\(1, 2, 3\) is too small for 2 pooling stages: each "
            r"halves the height and width, so both must be at least 4, got "
            r"height 2 and width 3\. Instead, use at most 1 conv stage \(entries "
            r"of the channel list\), or larger images\.$",
        ),
        (
            dict(image_shape=(1, 9, 9), channels=(1, 1, 1, 1)),
            r"at least 16, got height 9 and width 9\. Instead, use at most 3 conv "
            r"stages",
        ),
        (
            dict(image_shape=(1, 1, 8), channels=(4,)),
            r"^image_shape=\(1, 1, 8\) is too small for 1 pooling stage: .* "
            r"Instead, use the dense network \(conv_channels=\(\) in the "
            r"estimators\), as a side of 1 takes no pooling\.$",
        ),
        (
            dict(image_shape=(28, 28, 1), channels=(4, 8)),
            r"got height 28 and width 1\. image_shape is \(channels, height, "
            r"width\): for images with their channels last, pass "
            r"image_shape=\(1, 28, 28\) and the rows flattened channels first, "
            r"images\.transpose\(0, 3, 1, 2\)\.reshape\(n, -1\)\. Otherwise, use "
            r"the dense network",
        ),
        (
            dict(image_shape=(32, 32, 3), channels=(16, 32, 64)),
            r"pass image_shape=\(3, 32, 32\) .* Otherwise, use at most 1 conv "
            r"stage \(entries",
        ),
        (
            # The channels-first shape suggested is too small for 3 stages too.
            dict(image_shape=(6, 6, 3), channels=(16, 32, 64)),
            r"pass image_shape=\(3, 6, 6\), which takes at most 2 conv stages, "
            r"and the rows flattened channels first, .* Otherwise, use at most 1 "
            r"conv stage \(entries",
        ),
        (
            dict(image_shape=(1, 8, 8), channels=()),
            r"channels must name at least one conv stage, got \(\)\.",
        ),
        (
            dict(image_shape=(1, 8, 8), channels=4),
            r"^channels must be a sequence of positive integers, one per conv "
            r"stage, got 4; for a single stage pass channels=\(4,\)\.$",
        ),
        (
            dict(image_shape=(1, 8, 8), channels=None),
            r"^channels must be a sequence of positive integers, one per conv "
            r"stage, got None\.$",
        ),
        (
            dict(image_shape=(1, 8, 8), linear_path=True, out_activation="sigmoid"),
            r"out_activation must be None with linear_path=True",
        ),
        (
            dict(image_shape=(1, 8, 8), out_activation="softmax"),
            r"out_activation must be 'sigmoid' or None, got 'softmax'\.",
        ),
    ],
    ids=[
        "too_small",
        "too_many_stages",
        "too_flat",
        "channels_last_gray",
        "channels_last_color",
        "channels_last_small",
        "no_channels",
        "int_channels",
        "none_channels",
        "sigmoid_linear",
        "bad_out",
    ],
)
def test_conv_errors(params, message):
    with pytest.raises(ValueError, match=message):
        ConvAutoencoder(n_components=2, **params)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: DenseAutoencoder(8, -1), r"n_components must be a positive integer"),
        (lambda: DenseAutoencoder(8, 2.0), r"n_components must be a positive integer"),
        (lambda: DenseAutoencoder(True, 2), r"n_features must be a positive integer"),
        (
            lambda: DenseAutoencoder(8, 2, hidden_layer_sizes=(0,)),
            r"hidden_layer_sizes must hold positive integers",
        ),
        (
            lambda: DenseAutoencoder(8, 2, activation="gelu"),
            r"activation must be one of \['elu', ",
        ),
        (
            lambda: DenseAutoencoder(8, 2, activation=["relu"]),
            r"activation must be one of .*, got \['relu'\]\.",
        ),
        (
            lambda: ConvAutoencoder((1, 8, 8), 2, channels=(4,), activation={}),
            r"activation must be one of .*, got \{\}\.",
        ),
        (
            lambda: ConvAutoencoder((8, 8), 2),
            r"image_shape must be \(channels, height, width\)",
        ),
        (
            lambda: ConvAutoencoder((1, 8, 8), 2, channels=(0,)),
            r"channels must hold positive integers",
        ),
        (
            lambda: ConvAutoencoder((1, 8, 8), 2, channels=(4,), activation="gelu"),
            r"activation must be one of",
        ),
    ],
)
def test_network_arguments_are_checked(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda flags: DenseAutoencoder(8, 2, **flags),
        lambda flags: ConvAutoencoder((1, 8, 8), 2, channels=(4,), **flags),
    ],
)
@pytest.mark.parametrize("name", ["linear_path", "ordered"])
def test_flags_must_be_bools(build, name):
    # The string "no" was true: an ordered network, returning twice the rows.
    with pytest.raises(TypeError, match=rf"^{name} must be a bool, got 'no'\.$"):
        build({name: "no"})
    network = build({name: np.True_})
    assert network.nested_dropout.ordered is (name == "ordered")
    assert (network.encoder_linear is not None) is (name == "linear_path")


DENSE = DenseAutoencoder(4, 2, hidden_layer_sizes=(8,))
LINEAR = DenseAutoencoder(4, 2, linear_path=True)
CONV = ConvAutoencoder((3, 8, 8), 2, channels=(4,))


@pytest.mark.parametrize(
    "call, error, message",
    [
        # Torch's errors were a deep "mat1 and mat2 shapes cannot be
        # multiplied", an IndexError for one row, an Unflatten size error.
        (lambda: DENSE(torch.zeros(3, 5)), ValueError, r"shape \(n, 4\), got a"),
        (lambda: LINEAR(torch.zeros(3, 5)), ValueError, r"shape \(n, 4\), got a"),
        (
            lambda: DENSE.decode(torch.zeros(3, 3)),
            ValueError,
            r"codes of shape \(n, 2\)",
        ),
        (lambda: DENSE(torch.zeros(4)), ValueError, r"shape \(4,\)\. .* x\[None\]"),
        (lambda: DENSE.decode(torch.zeros(2)), ValueError, r"pass z\[None\]"),
        (lambda: DENSE(torch.zeros(3, 1, 4)), ValueError, r"x\.flatten\(1\)"),
        (lambda: CONV(torch.zeros(2, 100)), ValueError, r"shape \(n, 192\)"),
        (
            lambda: CONV(torch.zeros(2, 3, 8, 8)),
            ValueError,
            r"ConvAutoencoder\.encode takes rows of shape \(n, 192\), got a tensor "
            r"of shape \(2, 3, 8, 8\)\. Flatten each sample into a row",
        ),
        (
            lambda: CONV.decode(torch.zeros(3, 2, 1)),
            ValueError,
            # Codes are no images: no hint about their channels.
            r"got a tensor of shape \(3, 2, 1\)\. Flatten each sample into a "
            r"row: z\.flatten\(1\)\.$",
        ),
        (lambda: DENSE(np.zeros((3, 4), np.float32)), TypeError, r"got ndarray"),
    ],
)
def test_inputs_of_the_wrong_shape_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_rows_of_the_right_shape_pass_the_check():
    assert DENSE(torch.zeros(0, 4)).shape == (0, 4)
    assert CONV.decode(torch.zeros(3, 2)).shape == (3, 192)


@pytest.mark.parametrize("network", [DenseAutoencoder, ConvAutoencoder])
def test_docstring_documents_the_parameters_in_order(network):
    # ConvAutoencoder documented ordered before out_activation, the
    # signature's last two the other way round.
    validate = pytest.importorskip("numpydoc.validate")
    result = validate.validate(f"skae.{network.__name__}")
    errors = [e for e in result["errors"] if e[0] in ("PR01", "PR02", "PR03")]
    assert errors == []


@pytest.mark.parametrize(
    "call, message",
    [
        # Torch's errors were "mat1 and mat2 must have the same dtype" and
        # "Input type (double) and bias type (float) should be the same".
        (
            lambda: DENSE(torch.zeros(3, 4, dtype=torch.float64)),
            r"^DenseAutoencoder\.encode takes rows of the network's dtype, "
            r"torch\.float32, got torch\.float64\. Convert them with "
            r"x\.to\(torch\.float32\), or the network with "
            r"net\.to\(torch\.float64\)\.$",
        ),
        (
            lambda: CONV(torch.zeros(2, 192, dtype=torch.float64)),
            r"ConvAutoencoder\.encode takes rows of the network's dtype",
        ),
        (
            lambda: LINEAR.decode(torch.zeros(3, 2, dtype=torch.float16)),
            r"codes of the network's dtype, torch\.float32, got torch\.float16\. "
            r"Convert them with z\.to\(torch\.float32\)",
        ),
        (
            lambda: DENSE(torch.zeros(3, 4, dtype=torch.int64)),
            r"got torch\.int64\. Convert them with x\.to\(torch\.float32\)\.$",
        ),
    ],
)
def test_inputs_of_the_wrong_dtype_are_named(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_inputs_of_the_network_dtype_pass_the_check():
    net = DenseAutoencoder(4, 2, hidden_layer_sizes=(8,)).double()
    assert net(torch.zeros(3, 4, dtype=torch.float64)).dtype == torch.float64
    # Under autocast the codes come out in the reduced format, which the
    # decoder's float32 layers take.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert DENSE(torch.zeros(3, 4)).shape == (3, 4)
        assert CONV(torch.zeros(2, 192)).shape == (2, 192)
