"""Dense and convolutional autoencoder networks, built from size lists.

Torch only: these are plain :class:`torch.nn.Module` objects, usable without
the estimators. Both networks share one shape: an encoder and a decoder, each
optionally the sum of a linear path and a nonlinear residual. With
``linear_path=True`` the residual's last layers start at zero, so a network
whose linear path holds a PCA solution starts exactly at PCA's
reconstruction and training can only move away from it where that helps.
:func:`pca_start` and :func:`ppca_start` put that solution there.
"""

import math
from collections.abc import Sequence
from numbers import Integral

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch import nn

from skae._ordering import NestedDropout, PrefixConditioned
from skae._validation import (
    check_flag,
    check_image_shape,
    check_sizes,
    looks_channels_last,
)

ACTIVATIONS = {
    "elu": nn.ELU,
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


def _mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers through ``sizes`` with ``activation`` between them."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        if i:
            layers.append(ACTIVATIONS[activation]())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def _check_width(name: str, value) -> int:
    """Return ``value``, a positive int, or raise naming ``name``."""
    message = f"{name} must be a positive integer, got {value!r}."
    if np.ndim(value):
        raise ValueError(message)
    try:
        (width,) = check_sizes(name, value, allow_empty=False)
    except ValueError:
        raise ValueError(message) from None
    return width


def _check_activation(activation: str) -> None:
    # A str first: an unhashable value (a list) made the lookup raise
    # "unhashable type".
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}."
        )


def _zero_(layer: nn.Module) -> None:
    """Zero a layer's weight and bias in place."""
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()


class _Autoencoder(nn.Module):
    """Encoder and decoder, each a linear path plus a residual, either optional.

    Subclasses set ``encoder``, ``decoder`` (residuals, or None),
    ``encoder_linear``, ``decoder_linear`` (linear paths, or None) and
    ``nested_dropout``, the :class:`~skae._ordering.NestedDropout` layer the
    code passes on its way into the decoder.
    """

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Map rows of shape (n, n_features) to codes of shape (n, n_components)."""
        self._check_rows(x, self._n_features(), "encode", "rows")
        return self._sum(self.encoder_linear, self.encoder, x, x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Map codes of shape (n, n_components) back to rows (n, n_features)."""
        self._check_rows(z, self.nested_dropout.n_units, "decode", "codes")
        # The linear path decodes the kept units; the residual also sees
        # which units are kept (an ordered layer's mask).
        z = self.nested_dropout(z)
        codes = z[:, : self.nested_dropout.n_units]
        return self._sum(self.decoder_linear, self.decoder, codes, z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x``: ``decode(encode(x))``."""
        return self.decode(self.encode(x))

    def _n_features(self) -> int:
        """Width of the rows: the first layer's input."""
        if self.encoder_linear is not None:
            return self.encoder_linear.in_features
        return self.encoder[0].in_features

    def _check_rows(self, x, width: int, method: str, what: str) -> None:
        """Refuse anything but a 2-D tensor ``width`` wide of the network's dtype.

        Else torch failed deep inside: an IndexError for a single 1-D row,
        "mat1 and mat2 shapes cannot be multiplied" or an Unflatten error for
        a wrong width or for images not flattened into rows, "mat1 and mat2
        must have the same dtype" for float64 rows (NumPy's default). Shapes
        and dtypes only, a host-side look that costs no device sync.
        """
        name = f"{type(self).__name__}.{method}"
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"{name} takes a torch tensor of {what}, got {type(x).__name__}. "
                "Convert with torch.as_tensor(x, dtype=torch.float32)."
            )
        arg = "x" if what == "rows" else "z"
        if x.ndim == 2 and x.shape[1] == width:
            dtype = next(self.parameters()).dtype
            # Under autocast the layers take other float formats (the codes
            # reach the decoder in the reduced one).
            if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
                # A network of integers would not train: no hint to convert it.
                other = f", or the network with net.to({x.dtype})"
                raise TypeError(
                    f"{name} takes {what} of the network's dtype, {dtype}, got "
                    f"{x.dtype}. Convert them with {arg}.to({dtype})"
                    f"{other if x.dtype.is_floating_point else ''}."
                )
            return
        hint = ""
        if x.ndim == 1 and len(x) == width:
            hint = f" For a single one, pass {arg}[None]."
        elif x.ndim > 2 and math.prod(x.shape[1:]) == width:
            hint = f" Flatten each sample into a row: {arg}.flatten(1)."
            if what == "rows" and hasattr(self, "image_shape"):
                hint += " Images with their channels last need a permute first."
        raise ValueError(
            f"{name} takes {what} of shape (n, {width}), got a tensor of shape "
            f"{tuple(x.shape)}.{hint}"
        )

    @staticmethod
    def _sum(linear, residual, linear_input, residual_input):
        """Return the linear path on its input plus the residual on its own."""
        if linear is None:
            return residual(residual_input)
        if residual is None:
            return linear(linear_input)
        return linear(linear_input) + residual(residual_input)


class DenseAutoencoder(_Autoencoder):
    """Fully connected autoencoder with a mirrored decoder.

    The encoder maps ``n_features -> *hidden_layer_sizes -> n_components``;
    the decoder mirrors it back. With ``linear_path=True`` each half also has
    a linear map (``encoder_linear``, ``decoder_linear``) added to its output,
    and the nonlinear layers' last layer starts at zero, so the network is
    exactly linear until training moves it.

    Parameters
    ----------
    n_features : int
        Width of the input rows.
    n_components : int
        Width of the code.
    hidden_layer_sizes : sequence of int, default=()
        Widths of the encoder's hidden layers; the decoder uses them reversed.
        Empty gives a linear autoencoder.
    activation : {'relu', 'silu', 'elu', 'tanh', 'logistic', 'identity'}, default='relu'
        Nonlinearity between hidden layers.
    linear_path : bool, default=False
        Add a linear path beside the nonlinear layers and start those at zero.
    ordered : bool, default=False
        Train with nested dropout: the decoder sees, for each row, only a
        random prefix of the code, so that the leading units carry the most.
        An ordered network returns ``2 * n`` rows for ``n`` (the whole
        codes' reconstructions, then the prefixes'), in train mode and in
        eval mode until ``nested_dropout.kept`` is set to a width, for the
        prefix loss the estimators train it with: use
        ``AutoencoderTransformer(ordered=True)`` rather than this network
        alone.

    Examples
    --------
    >>> import torch
    >>> from skae import DenseAutoencoder
    >>> net = DenseAutoencoder(8, 2, hidden_layer_sizes=(16,))
    >>> net.encode(torch.zeros(5, 8)).shape
    torch.Size([5, 2])
    >>> net(torch.zeros(5, 8)).shape
    torch.Size([5, 8])
    """

    def __init__(
        self,
        n_features: int,
        n_components: int,
        hidden_layer_sizes: Sequence[int] = (),
        activation: str = "relu",
        linear_path: bool = False,
        ordered: bool = False,
    ) -> None:
        super().__init__()
        n_features = _check_width("n_features", n_features)
        n_components = _check_width("n_components", n_components)
        hidden_layer_sizes = check_sizes(
            "hidden_layer_sizes", hidden_layer_sizes, allow_empty=True
        )
        _check_activation(activation)
        linear_path = check_flag("linear_path", linear_path)
        ordered = check_flag("ordered", ordered)
        self.nested_dropout = NestedDropout(n_components, ordered)
        sizes = [n_features, *hidden_layer_sizes, n_components]
        # A residual without hidden layers would only duplicate the linear path.
        nonlinear = bool(hidden_layer_sizes) or not linear_path
        self.encoder = _mlp(sizes, activation) if nonlinear else None
        decoder_sizes = [self.nested_dropout.n_outputs, *sizes[::-1][1:]]
        self.decoder = _mlp(decoder_sizes, activation) if nonlinear else None
        if ordered and nonlinear:
            # Hidden units modulated by the prefix's length: one decoder
            # for every prefix.
            self.decoder = PrefixConditioned(self.decoder, n_components)
        self.encoder_linear = (
            nn.Linear(n_features, n_components) if linear_path else None
        )
        self.decoder_linear = (
            nn.Linear(n_components, n_features) if linear_path else None
        )
        if linear_path and nonlinear:
            _zero_(self.encoder[-1])
            _zero_(self.decoder[-1])


def _too_small_message(image_shape: tuple[int, int, int], n_stages: int) -> str:
    """Why ``image_shape`` cannot take ``n_stages`` pooling stages, and what to do."""
    n_channels, height, width = image_shape
    message = (
        f"image_shape={image_shape} is too small for {n_stages} pooling "
        f"{'stage' if n_stages == 1 else 'stages'}: each halves the height and "
        f"width, so both must be at least {2**n_stages}, got height {height} "
        f"and width {width}."
    )
    # Stages that fit: each needs the smaller side to halve to at least 1.
    fitting = _stages_that_fit(height, width)
    if fitting:
        advice = (
            f"use at most {fitting} conv {'stage' if fitting == 1 else 'stages'} "
            "(entries of the channel list), or larger images."
        )
    else:
        advice = (
            "use the dense network (conv_channels=() in the estimators), as a "
            "side of 1 takes no pooling."
        )
    # Channels-last images, (H, W, C), are the likelier mistake.
    if looks_channels_last(image_shape):
        # The channels-first reading, (W, C, H) here, can be too small as well.
        swapped = _stages_that_fit(n_channels, height)
        limit = ""
        if not swapped:
            limit = ", which has a side of 1 and takes no pooling either,"
        elif swapped < n_stages:
            limit = (
                f", which takes at most {swapped} conv "
                f"{'stage' if swapped == 1 else 'stages'},"
            )
        return (
            f"{message} image_shape is (channels, height, width): for images "
            f"with their channels last, pass image_shape="
            f"{(width, n_channels, height)}{limit} and the rows flattened channels "
            f"first, images.transpose(0, 3, 1, 2).reshape(n, -1). Otherwise, "
            f"{advice}"
        )
    return f"{message} Instead, {advice}"


def _stages_that_fit(height: int, width: int) -> int:
    """How many 2x2 pooling stages images of ``height`` x ``width`` take."""
    return min(height, width).bit_length() - 1


def _conv_sizes(size: int, n_stages: int) -> list[int]:
    """Spatial sizes before each 2x2 max-pool, and after the last one."""
    sizes = [size]
    for _ in range(n_stages):
        sizes.append(sizes[-1] // 2)
    return sizes


class ConvAutoencoder(_Autoencoder):
    """Convolutional autoencoder for images stored as flat rows.

    The encoder is a stack of stages ``3x3 conv + activation + 2x2 max-pool``,
    one per entry of ``channels``, then a linear layer to the code. The
    decoder is a linear layer back to the last stage's feature map, then
    stride-2 transposed convolutions through the channels in reverse down to
    the image's channels. With the defaults and ``image_shape=(3, 32, 32)``
    this is the classic CIFAR-10 autoencoder (16, 32, 64 channels, a 64x4x4
    bottleneck map). Other sizes work too: each transposed convolution's
    ``output_padding`` restores the exact size its pooling stage removed.

    Rows come in and go out flat, of width ``C * H * W``, so the network
    fits a 2-D pipeline.

    Parameters
    ----------
    image_shape : tuple of int (C, H, W)
        Channels, height and width of one image.
    n_components : int
        Width of the code.
    channels : sequence of int, default=(16, 32, 64)
        Output channels of the encoder's stages.
    activation : {'relu', 'silu', 'elu', 'tanh', 'logistic', 'identity'}, default='relu'
        Nonlinearity after each convolution but the last.
    linear_path : bool, default=False
        Add a linear path (flat rows to code and back) beside the
        convolutional layers and start those layers' outputs at zero.
    out_activation : {'sigmoid', None}, default=None
        Applied to the decoder's output. The classic network ends with a
        sigmoid for images in [0, 1]; the estimators keep None and apply the
        sigmoid inside the loss (``loss='bce'``) for numerical stability.
    ordered : bool, default=False
        Train with nested dropout, as for :class:`DenseAutoencoder`.

    Examples
    --------
    >>> import torch
    >>> from skae import ConvAutoencoder
    >>> net = ConvAutoencoder((1, 28, 28), 8, channels=(4, 8))
    >>> net(torch.rand(2, 784)).shape
    torch.Size([2, 784])
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        n_components: int,
        channels: Sequence[int] = (16, 32, 64),
        activation: str = "relu",
        linear_path: bool = False,
        out_activation: str | None = None,
        ordered: bool = False,
    ) -> None:
        super().__init__()
        n_components = _check_width("n_components", n_components)
        if not np.ndim(channels):
            # A scalar said "must name at least one conv stage" of channels=4,
            # which names one; the estimators' conv_channels is a tuple too.
            hint = ""
            if isinstance(channels, Integral) and not isinstance(channels, bool):
                hint = f"; for a single stage pass channels={(int(channels),)}"
            raise ValueError(
                "channels must be a sequence of positive integers, one per conv "
                f"stage, got {channels!r}{hint}."
            )
        if not len(channels):
            raise ValueError(
                f"channels must name at least one conv stage, got {channels!r}."
            )
        channels = check_sizes("channels", channels, allow_empty=False)
        image_shape = check_image_shape(image_shape)
        _check_activation(activation)
        linear_path = check_flag("linear_path", linear_path)
        ordered = check_flag("ordered", ordered)
        self.nested_dropout = NestedDropout(n_components, ordered)
        if linear_path and out_activation is not None:
            raise ValueError(
                "out_activation must be None with linear_path=True: the residual "
                "has to start at zero."
            )
        n_channels, height, width = image_shape
        heights = _conv_sizes(height, len(channels))
        widths = _conv_sizes(width, len(channels))
        if min(heights[-1], widths[-1]) < 1:
            raise ValueError(_too_small_message(image_shape, len(channels)))
        self.image_shape = tuple(image_shape)
        self._bottleneck = (channels[-1], heights[-1], widths[-1])
        n_bottleneck = channels[-1] * heights[-1] * widths[-1]
        n_features = n_channels * height * width

        stages: list[nn.Module] = [nn.Unflatten(1, self.image_shape)]
        for c_in, c_out in zip((n_channels, *channels[:-1]), channels, strict=True):
            stages += [
                nn.Conv2d(c_in, c_out, 3, padding=1),
                ACTIVATIONS[activation](),
                nn.MaxPool2d(2),
            ]
        stages += [nn.Flatten(), nn.Linear(n_bottleneck, n_components)]
        self.encoder = nn.Sequential(*stages)

        ups: list[nn.Module] = [
            nn.Linear(self.nested_dropout.n_outputs, n_bottleneck),
            nn.Unflatten(1, self._bottleneck),
        ]
        outs = (*channels[::-1][1:], n_channels)
        for i, (c_in, c_out) in enumerate(zip(channels[::-1], outs, strict=True)):
            # Stage i undoes pooling stage n-1-i: size s -> s // 2.
            target_h, target_w = heights[-2 - i], widths[-2 - i]
            ups.append(
                nn.ConvTranspose2d(
                    c_in,
                    c_out,
                    3,
                    stride=2,
                    # Odd sides need no padding, even sides one on each end.
                    padding=(1 - target_h % 2, 1 - target_w % 2),
                    output_padding=(1 - target_h % 2, 1 - target_w % 2),
                )
            )
            if i < len(channels) - 1:
                ups.append(ACTIVATIONS[activation]())
        if out_activation == "sigmoid":
            ups.append(nn.Sigmoid())
        elif out_activation is not None:
            raise ValueError(
                f"out_activation must be 'sigmoid' or None, got {out_activation!r}."
            )
        ups.append(nn.Flatten())
        self.decoder = nn.Sequential(*ups)
        self.encoder_linear = (
            nn.Linear(n_features, n_components) if linear_path else None
        )
        self.decoder_linear = (
            nn.Linear(n_components, n_features) if linear_path else None
        )
        if linear_path:
            _zero_(self.encoder[-1])
            last_conv = [m for m in self.decoder if isinstance(m, nn.ConvTranspose2d)]
            _zero_(last_conv[-1])

    def _n_features(self) -> int:
        """Width of the rows: one flat image."""
        return math.prod(self.image_shape)


def build_network(
    n_features,
    n_components,
    *,
    hidden_layer_sizes,
    activation,
    image_shape,
    conv_channels,
    linear_path,
    ordered,
):
    """Return the estimators' network: convolutional for images, else dense.

    Images (``image_shape`` set) get the dense network too when
    ``conv_channels`` is empty.
    """
    if image_shape is None or not len(conv_channels):
        return DenseAutoencoder(
            n_features,
            n_components,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            linear_path=linear_path,
            ordered=ordered,
        )
    return ConvAutoencoder(
        tuple(int(s) for s in image_shape),
        n_components,
        channels=tuple(int(c) for c in conv_channels),
        activation=activation,
        linear_path=linear_path,
        ordered=ordered,
    )


def spectrum_solver(X):
    """PCA's ``svd_solver`` for the exact spectrum of ``X``.

    From the covariance matrix where there are more rows than features (a
    fourth of the SVD's time on 6,000 Fashion-MNIST rows), else from the
    SVD of the rows. Never PCA's ``'auto'``, which on data over 500 rows or
    features often takes a randomized, approximate SVD.
    """
    n_samples, n_features = X.shape
    return "covariance_eigh" if n_samples >= n_features else "full"


def logit_decoder(codes, X_train):
    """Least-squares linear map from ``codes`` to the logits of ``X_train``.

    Returns ``(weight, bias)`` for a ``Linear(n_components, n_features)``; the
    data are clipped to [1e-3, 1 - 1e-3] so that their logits are finite.
    """
    clipped = np.clip(X_train, 1e-3, 1 - 1e-3)
    logits = np.log(clipped) - np.log1p(-clipped)
    design = np.hstack([codes, np.ones((len(codes), 1))])
    solution = np.linalg.lstsq(design, logits, rcond=None)[0]
    return solution[:-1].T, solution[-1]


def set_linear_path(network, encoder, decoder):
    """Copy ``(weight, bias)`` pairs into the network's linear paths."""
    if network.encoder_linear is None:
        raise ValueError(
            f"{type(network).__name__} has no linear path to set: build it with "
            "linear_path=True."
        )
    with torch.no_grad():
        for layer, (weight, bias) in (
            (network.encoder_linear, encoder),
            (network.decoder_linear, decoder),
        ):
            layer.weight.copy_(torch.as_tensor(weight))
            layer.bias.copy_(torch.as_tensor(bias))


def _fitted_pca(X_train, n_components, random_state):
    """Return PCA fitted to ``X_train`` with an exact solver (:func:`spectrum_solver`).

    One training row (early stopping's split of two rows, or a
    ``validation_fraction`` that leaves one) has variances of 0 / 0, for
    which PCA's division raised NumPy's "invalid value encountered in
    divide" RuntimeWarning from inside scikit-learn; its components and
    mean, which the start reads, are finite, and :func:`ppca_start` floors
    the variances.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return PCA(
            n_components=n_components,
            svd_solver=spectrum_solver(X_train),
            random_state=random_state,
        ).fit(X_train)


def _check_loss(loss) -> None:
    """Refuse a ``loss`` the starts do not know: any other read as ``'bce'``."""
    if loss not in ("mse", "bce"):
        raise ValueError(f"loss must be 'mse' or 'bce', got {loss!r}.")


def pca_start(network, X_train, n_components, *, loss, random_state):
    """Set the network's linear paths to the PCA solution of ``X_train``.

    With ``loss='mse'`` the network then reconstructs exactly as PCA does:
    PCA with an exact solver (:func:`spectrum_solver`), which leaves
    ``random_state`` unused. With ``loss='bce'`` the decoder outputs logits,
    so its linear path is the least-squares map from PCA's codes to the
    logits of the (clipped) data: the best linear logit decoder for those
    codes.
    """
    _check_loss(loss)
    pca = _fitted_pca(X_train, n_components, random_state)
    components = pca.components_
    enc_weight, enc_bias = components, -components @ pca.mean_
    if loss == "mse":
        dec_weight, dec_bias = components.T, pca.mean_
    else:
        dec_weight, dec_bias = logit_decoder(pca.transform(X_train), X_train)
    set_linear_path(network, (enc_weight, enc_bias), (dec_weight, dec_bias))


def ppca_start(network, X_train, n_components, *, loss, random_state):
    """Set the linear paths to probabilistic PCA's solution of ``X_train``.

    Whitened PCA codes (unit variance, like a VAE's prior) and the decoder
    ``U (Lambda - sigma^2)^(1/2)``. Returns ``(noise_var, logvar)``: PCA's
    ``noise_variance_`` and the posterior log-variances
    ``log(sigma^2 / lambda)``, for the rest of a variational network.
    PCA is fitted as in :func:`pca_start`.
    """
    _check_loss(loss)
    pca = _fitted_pca(X_train, n_components, random_state)
    # Floors keep constant or rank-deficient data finite, and a single row,
    # whose variances PCA leaves undefined (0 / 0).
    variances = np.maximum(np.nan_to_num(pca.explained_variance_), 1e-6)
    noise_var = float(np.clip(np.nan_to_num(pca.noise_variance_), 1e-6, None))
    enc_weight = pca.components_ / np.sqrt(variances)[:, None]
    enc_bias = -enc_weight @ pca.mean_
    if loss == "mse":
        scales = np.sqrt(np.maximum(variances - noise_var, 1e-6))
        dec_weight, dec_bias = pca.components_.T * scales, pca.mean_
    else:
        codes = (X_train - pca.mean_) @ enc_weight.T
        dec_weight, dec_bias = logit_decoder(codes, X_train)
    set_linear_path(network, (enc_weight, enc_bias), (dec_weight, dec_bias))
    return noise_var, np.log(noise_var / variances)
