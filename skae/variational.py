"""VariationalAutoencoder: a generative autoencoder with the same contract."""

import math
from numbers import Real

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from skae._base import (
    PartialFitMixin,
    _BaseAutoencoder,
    logit_decoder,
    set_linear_path,
)
from skae._validation import (
    Interval,
    check_rows_ndim,
    torch_seed,
    wrap_like_input,
)

# Bounds on log-variances (model units, where the data have unit RMS): wide
# enough for any fit, narrow enough that exp() never overflows or vanishes.
_LOGVAR_MIN, _LOGVAR_MAX = -14.0, 10.0
# Fixed standard-normal draws used to score rows (eval mode).
N_SCORE_SAMPLES = 8


class _Variational(nn.Module):
    """A network's encoder as the posterior mean, plus a log-variance head.

    In train mode the code is sampled with the reparameterisation trick from
    the module's own generator. In eval mode the samples are fixed draws
    (``score_eps``, shared by all rows), so held-out losses and scores are
    deterministic and do not depend on how rows are batched.
    """

    def __init__(self, network, n_features, n_components, log_noise_var=0.0):
        super().__init__()
        self.network = network
        # The posterior log-variance, a linear map of the input; it starts
        # constant (zero weights) at the bias set by the initialisation.
        self.logvar_head = nn.Linear(n_features, n_components)
        with torch.no_grad():
            self.logvar_head.weight.zero_()
            self.logvar_head.bias.zero_()
        # Variance of the Gaussian likelihood (loss='mse'), in model units.
        self.log_noise_var = nn.Parameter(torch.tensor(float(log_noise_var)))
        self.register_buffer("score_eps", torch.zeros(N_SCORE_SAMPLES, n_components))
        self.generator = None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean of the code."""
        return self.network.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode codes (to model units, or to logits for loss='bce')."""
        return self.network.decode(z)

    def posterior(self, x):
        """Posterior mean and clamped log-variance of the code."""
        logvar = self.logvar_head(x).clamp(_LOGVAR_MIN, _LOGVAR_MAX)
        return self.encode(x), logvar

    def forward(self, x: torch.Tensor, sample: int = 0):
        """Return ``(decoded, mean, logvar, log_noise_var)`` for the loss."""
        mean, logvar = self.posterior(x)
        if self.training:
            eps = torch.randn(
                mean.shape,
                generator=self.generator,
                device=mean.device,
                dtype=mean.dtype,
            )
        else:
            eps = self.score_eps[sample]
        z = mean + torch.exp(0.5 * logvar) * eps
        log_noise_var = self.log_noise_var.clamp(_LOGVAR_MIN, _LOGVAR_MAX)
        return self.decode(z), mean, logvar, log_noise_var

    def __getstate__(self):
        # A torch.Generator does not pickle; a loaded model only scores.
        state = self.__dict__.copy()
        state["generator"] = None
        return state


class _NegativeELBO(nn.Module):
    """Per-row negative evidence lower bound with a weighted KL term."""

    def __init__(self, loss, beta, n_features):
        super().__init__()
        self.loss = loss
        self.beta = beta
        self.n_features = n_features

    def terms(self, output, target):
        """Per-row negative log-likelihood and KL divergence to the prior."""
        decoded, mean, logvar, log_noise_var = output
        if self.loss == "mse":
            nll = 0.5 * (
                ((target - decoded) ** 2).sum(dim=1) / log_noise_var.exp()
                + self.n_features * (log_noise_var + math.log(2 * math.pi))
            )
        else:
            nll = nn.functional.binary_cross_entropy_with_logits(
                decoded, target, reduction="none"
            ).sum(dim=1)
        kl = 0.5 * (mean**2 + logvar.exp() - 1.0 - logvar).sum(dim=1)
        return nll, kl

    def forward(self, output, target):
        """Mean over rows, per feature, so learning rates transfer."""
        # Under mixed precision the terms are summed in float32.
        nll, kl = self.terms([term.float() for term in output], target)
        return (nll + self.beta * kl).mean() / self.n_features


class VariationalAutoencoder(PartialFitMixin, _BaseAutoencoder):
    """Variational autoencoder with PCA's transformer contract.

    The encoder gives a Gaussian posterior over the code (its mean from the
    dense or convolutional encoder, its log-variance from a linear head), the
    decoder a Gaussian likelihood with a learned variance (``loss='mse'``) or
    a Bernoulli one (``loss='bce'``, data in [0, 1]), and training maximises
    the evidence lower bound (ELBO) with the KL term weighted by ``beta``.
    :meth:`transform` returns the posterior mean, :meth:`inverse_transform`
    decodes codes, :meth:`sample` draws new rows from the prior, and
    :meth:`score_samples` is each row's ELBO, a lower bound on its
    log-likelihood in the data's units.

    With ``init='pca'`` the linear paths start at probabilistic PCA's
    solution: whitened PCA codes (unit variance, like the prior), a decoder
    ``U (Lambda - sigma^2)^(1/2)``, the likelihood variance at PCA's
    ``noise_variance_`` and the posterior variance at ``sigma^2 / lambda``.

    Parameters
    ----------
    n_components : int or float, default=2
        Width of the code; a float in (0, 1) as for PCA.
    beta : float, default=1.0
        Weight of the KL term in the training loss (beta-VAE). Scores always
        use the true ELBO (weight 1).
    hidden_layer_sizes : int or tuple of int, default=(512, 256)
        Hidden widths of the dense encoder; the decoder mirrors them. An int
        is one hidden layer.
    activation : {'relu', 'silu', 'elu', 'tanh', 'logistic', 'identity'}, default='relu'
        Nonlinearity of the hidden layers.
    image_shape : tuple of int (C, H, W), default=None
        Treat rows as flattened images and use the convolutional network.
    conv_channels : tuple of int, default=(16, 32, 64)
        Channels of the convolutional encoder's stages; ``()`` gives image
        rows the dense network.
    init : {'pca', 'random'}, default='pca'
        Start from probabilistic PCA (plus zero residuals), or at random.
    loss : {'mse', 'bce'}, default='mse'
        Gaussian likelihood with a learned variance, or Bernoulli for data
        in [0, 1].
    batch_size : int or 'auto', default='auto'
        Rows per training batch.
    learning_rate : {'constant', 'adaptive'}, default='constant'
        Schedule of Adam's learning rate. ``'constant'`` keeps
        ``learning_rate_init``. ``'adaptive'`` starts there and multiplies
        the rate by 0.3 each time the loss that early stopping monitors has
        not improved by ``tol`` for ``n_iter_no_change // 4`` epochs
        (skorch's ``LRScheduler`` with ``ReduceLROnPlateau``), as
        :class:`AutoencoderTransformer` does by default.
        :meth:`partial_fit` trains on at the rate ``fit`` ended with.
    learning_rate_init : float, default=1e-3
        Adam's learning rate.
    alpha : float, default=1e-4
        L2 penalty (Adam's weight decay).
    max_iter : int, default=200
        Maximum number of epochs.
    tol : float, default=1e-4
        Relative improvement of the monitored loss that counts as progress.
    early_stopping : bool, default=True
        Stop when the held-out negative ELBO stops improving; restore the best
        weights (the initial state included).
    validation_fraction : float, default=0.1
        Fraction of rows held out for early stopping.
    n_iter_no_change : int, default=20
        Epochs without improvement before training stops.
    device : str or torch.device, default='auto'
        ``'auto'``, ``'cpu'``, ``'cuda'`` or ``'cuda:<index>'``.
    precision : {'float32', 'bfloat16', 'float16'}, default='float32'
        Mixed precision (:func:`torch.autocast`) for the network's
        computations; see :class:`AutoencoderTransformer`.
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks, cloned at each fit.
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the weights, the batch order, the sampling during
        training and the fixed draws used for scoring.
    verbose : int, default=0
        0 is silent; 1 prints a line per epoch (losses, learning rate, time
        taken and left), plain text unless stdout is a terminal; 2 adds a
        per-batch progress bar on a terminal.

    Attributes
    ----------
    n_components_ : int
        Width of the code.
    mean_ : ndarray of shape (n_features,)
        Per-feature mean of the training data.
    data_min_ : ndarray of shape (n_features,)
        Per-feature minimum of the training data (of all rows
        :meth:`partial_fit` has seen), where ``sample(clip=True)`` clips.
    data_max_ : ndarray of shape (n_features,)
        Per-feature maximum of the training data, likewise.
    explained_variance_score_ : float
        Fraction of the training data's variance explained by the
        reconstruction through the posterior mean.
    n_iter_ : int
        Number of epochs run.
    best_epoch_ : int
        Epoch whose weights were kept (0: the initial PCA state; a random
        start is never kept, so with ``init='random'`` it is at least 1).
    loss_curve_ : list of float
        Training negative ELBO per epoch and feature (model units).
    validation_loss_curve_ : list of float or None
        Held-out negative ELBO per epoch and feature; None without early
        stopping.
    net_ : AutoencoderNet
        The fitted skorch net.
    module_ : torch.nn.Module
        The fitted variational network.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.decomposition.PCA : ``PCA.score`` is probabilistic PCA's
        log-likelihood, the linear counterpart of :meth:`score`.
    AutoencoderTransformer : The deterministic autoencoder.

    References
    ----------
    .. [1] D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes",
       ICLR 2014.
    .. [2] M. E. Tipping and C. M. Bishop, "Probabilistic principal component
       analysis", JRSS B 61(3), 1999.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VariationalAutoencoder
    >>> X = load_digits().data
    >>> vae = VariationalAutoencoder(8, max_iter=5, random_state=0).fit(X)
    >>> vae.transform(X[:3]).shape
    (3, 8)
    >>> vae.sample(4, random_state=0).shape
    (4, 64)
    """

    _parameter_constraints: dict = {
        **_BaseAutoencoder._parameter_constraints,
        "beta": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components=2,
        *,
        beta=1.0,
        hidden_layer_sizes=(512, 256),
        activation="relu",
        image_shape=None,
        conv_channels=(16, 32, 64),
        init="pca",
        loss="mse",
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=1e-3,
        alpha=1e-4,
        max_iter=200,
        tol=1e-4,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        device="auto",
        precision="float32",
        callbacks=None,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            n_components,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            image_shape=image_shape,
            conv_channels=conv_channels,
            init=init,
            loss=loss,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            alpha=alpha,
            max_iter=max_iter,
            tol=tol,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            device=device,
            precision=precision,
            callbacks=callbacks,
            random_state=random_state,
            verbose=verbose,
        )
        self.beta = beta

    def _criterion(self, n_features):
        return _NegativeELBO(self.loss, self.beta, n_features)

    def _init_from_pca(self, network, X_train, rng):
        """Start the linear paths at probabilistic PCA's solution."""
        pca = PCA(n_components=self.n_components_, random_state=rng).fit(X_train)
        # Floors keep constant or rank-deficient data finite.
        variances = np.maximum(pca.explained_variance_, 1e-6)
        noise_var = float(np.clip(pca.noise_variance_, 1e-6, None))
        enc_weight = pca.components_ / np.sqrt(variances)[:, None]
        enc_bias = -enc_weight @ pca.mean_
        if self.loss == "mse":
            scales = np.sqrt(np.maximum(variances - noise_var, 1e-6))
            dec_weight, dec_bias = pca.components_.T * scales, pca.mean_
        else:
            codes = (X_train - pca.mean_) @ enc_weight.T
            dec_weight, dec_bias = logit_decoder(codes, X_train)
        set_linear_path(network, (enc_weight, enc_bias), (dec_weight, dec_bias))
        self._ppca_init = (noise_var, np.log(noise_var / variances))

    def _wrap_network(self, network, X, device, rng):
        n_features = X.shape[1]
        noise_var, logvar = getattr(self, "_ppca_init", (1.0, 0.0))
        module = _Variational(
            network, n_features, self.n_components_, log_noise_var=np.log(noise_var)
        )
        with torch.no_grad():
            module.logvar_head.bias.copy_(
                torch.as_tensor(np.broadcast_to(logvar, (self.n_components_,)).copy())
            )
        score_rng = np.random.RandomState(torch_seed(rng))
        module.score_eps.copy_(
            torch.as_tensor(score_rng.standard_normal(module.score_eps.shape))
        )
        module.generator = torch.Generator(device=device).manual_seed(torch_seed(rng))
        return module

    def _after_fit(self, X, valid_idx):
        # fit and the first partial_fit count their own rows only in
        # n_samples_seen_: they set the range; a later partial_fit widens it.
        data_min, data_max = X.min(axis=0), X.max(axis=0)
        if self.n_samples_seen_ > len(X):
            data_min = np.minimum(self.data_min_, data_min)
            data_max = np.maximum(self.data_max_, data_max)
        self.data_min_, self.data_max_ = data_min, data_max

    def score_samples(self, X):
        """Evidence lower bound of each row, in the data's units.

        A Monte Carlo estimate over fixed standard-normal draws shared by all
        rows: deterministic, and independent of batching. Higher is more
        likely; low values flag unusual rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
            Per-row ELBO. With ``loss='mse'`` it bounds the log-density of
            the row in the data's units; with ``loss='bce'`` the Bernoulli
            log-likelihood of the row.
        """
        check_is_fitted(self)
        check_rows_ndim(X, self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        module = self.net_.module_
        criterion = _NegativeELBO(self.loss, 1.0, X.shape[1])
        # Rows were divided by the scale: the density picks up its Jacobian.
        log_jacobian = X.shape[1] * math.log(self._scale)

        def elbo(batch):
            nll = 0.0
            for sample in range(N_SCORE_SAMPLES):
                # Sums in float64: the same for a row alone or in a batch.
                output = [term.double() for term in module(batch, sample)]
                nll_s, kl = criterion.terms(output, batch.double())
                nll = nll + nll_s / N_SCORE_SAMPLES
            return -(nll + kl).cpu().numpy() - log_jacobian

        return self._batched(X, elbo).astype(X.dtype, copy=False)

    def score(self, X, y=None):
        """Mean evidence lower bound over ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.
        y : Ignored
            Not used.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`; compare with ``PCA.score``.
        """
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples=1, *, random_state=None, clip=False):
        """Draw new rows from the prior through the decoder.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to draw.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws from the prior.
        clip : bool, default=False
            Clip each feature to its range in the training data,
            ``[data_min_, data_max_]``. The decoder's mean of a Gaussian
            likelihood (``loss='mse'``) can leave that range, e.g. with
            negative pixel values; clipped, the samples are valid data but no
            longer the model's means. With ``loss='bce'`` the means are
            probabilities, already in [0, 1].

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features)
            The decoder's mean for each draw, in the data's units.
        """
        check_is_fitted(self)
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
            raise TypeError(f"n_samples must be an int, got {n_samples!r}.")
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
        if not isinstance(clip, (bool, np.bool_)):
            raise TypeError(f"clip must be True or False, got {clip!r}.")
        rng = check_random_state(random_state)
        codes = rng.standard_normal((n_samples, self.n_components_))
        X_new = self.inverse_transform(codes)
        if not clip:
            return X_new
        # Clipped as an array, then put back in the container asked for.
        clipped = np.clip(np.asarray(X_new), self.data_min_, self.data_max_)
        return wrap_like_input(
            self, clipped, codes, getattr(self, "feature_names_in_", None)
        )
