"""VariationalAutoencoder: a generative autoencoder with the same contract."""

import math
from numbers import Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from skae._base import _BaseAutoencoder
from skae._mixins import PartialFitMixin
from skae._networks import ppca_start
from skae._params import MEASURED_DEFAULTS, fill_doc, make_init
from skae._training import rank_seed
from skae._validation import (
    Interval,
    check_bce_range,
    check_flag,
    check_rows_ndim,
    generator_state,
    restore_generator,
    torch_seed,
    wrap_like_input,
)

# Bounds on log-variances (model units, where the data have unit RMS): wide
# enough for any fit, narrow enough that exp() never overflows or vanishes.
_LOGVAR_MIN, _LOGVAR_MAX = -14.0, 10.0
# Fixed standard-normal draws used to score rows (eval mode).
N_SCORE_SAMPLES = 8
# The largest beta. The loss and its gradients are float32: at beta=1e25 (6
# features, a random start) beta times the KL term's gradients overflowed
# Adam's second moments and the weights silently stopped moving, and past
# 3.4e38 the loss itself is inf, blamed on learning_rate_init or on input
# noise. The KL term already swamps the likelihood by beta=1e6 (the training
# loss over beta is then the same to four digits as at 1e20), so the bound
# loses no model.
_BETA_MAX = 1e10


class _Variational(nn.Module):
    """A network's encoder as the posterior mean, plus a log-variance head.

    In train mode the code is sampled with the reparameterisation trick from
    the module's own generator. In eval mode the draws are fixed: every one
    of :meth:`score_draws` (shared by all rows), whose losses the criterion
    averages, or the one given, so held-out losses and scores are
    deterministic and do not depend on how rows are batched. The held-out
    loss that early stopping watches is then the estimate ``score_samples``
    gives: with the first raw draw alone, an epoch that a lucky draw scored
    above the PCA start was kept, though its ELBO was below the start's
    (``PCA.score``) on those rows and on the training rows.
    """

    def __init__(self, network, n_features, n_components, log_noise_var=0.0):
        super().__init__()
        self.network = network
        # The posterior log-variance, a linear map of the input; it starts
        # constant (zero weights) at the bias set by the initialisation.
        # skip_init: no draw from torch's global RNG, the caller's.
        self.logvar_head = nn.utils.skip_init(nn.Linear, n_features, n_components)
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

    def score_draws(self) -> torch.Tensor:
        """Return the fixed draws rows are scored with, (n_draws, n_components).

        ``score_eps`` with each unit's draws given the prior's mean 0 and
        mean square 1. Raw, the few draws that every row shares shifted
        every row's ELBO alike, at the PCA start above ``PCA.score`` of the
        same rows, which bounds it; so set, the estimate is exact for a
        Gaussian likelihood with a linear decoder of orthogonal columns,
        such as the PCA start's.
        """
        draws = self.score_eps - self.score_eps.mean(dim=0)
        return draws / draws.square().mean(dim=0).sqrt()

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None):
        """Return ``(decoded, mean, logvar, log_noise_var)`` for the loss.

        ``eps``, if given, is the standard-normal draw of every row's code.
        In eval mode without it, ``decoded`` has a leading axis: the rows
        decoded from each of :meth:`score_draws`.
        """
        mean, logvar = self.posterior(x)
        std = torch.exp(0.5 * logvar)
        log_noise_var = self.log_noise_var.clamp(_LOGVAR_MIN, _LOGVAR_MAX)
        if eps is None and not self.training:
            draws = self.score_draws().to(mean.dtype)
            z = mean + std * draws[:, None, :]
            decoded = self.decode(z.reshape(-1, z.shape[-1]))
            return decoded.reshape(len(draws), len(x), -1), mean, logvar, log_noise_var
        if eps is None:
            eps = torch.randn(
                mean.shape,
                generator=self.generator,
                device=mean.device,
                dtype=mean.dtype,
            )
        return self.decode(mean + std * eps), mean, logvar, log_noise_var

    def __getstate__(self):
        # The generator as its state: a copy samples the same codes next.
        state = self.__dict__.copy()
        state["generator"] = generator_state(self.generator)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.generator = restore_generator(self.generator)


class _NegativeELBO(nn.Module):
    """Per-row negative evidence lower bound with a weighted KL term."""

    def __init__(self, loss, beta, n_features):
        super().__init__()
        self.loss = loss
        self.beta = beta
        self.n_features = n_features

    def terms(self, output, target):
        """Per-row negative log-likelihood and KL divergence to the prior.

        ``decoded`` with a leading axis of draws (eval mode) gives the
        likelihood term averaged over them.
        """
        decoded, mean, logvar, log_noise_var = output
        if self.loss == "mse":
            nll = 0.5 * (
                ((target - decoded) ** 2).sum(dim=-1) / log_noise_var.exp()
                + self.n_features * (log_noise_var + math.log(2 * math.pi))
            )
        else:
            nll = nn.functional.binary_cross_entropy_with_logits(
                decoded, target.expand_as(decoded), reduction="none"
            ).sum(dim=-1)
        if decoded.ndim == 3:
            nll = nll.mean(dim=0)
        kl = 0.5 * (mean**2 + logvar.exp() - 1.0 - logvar).sum(dim=1)
        return nll, kl

    def forward(self, output, target):
        """Mean over rows, per feature, so learning rates transfer."""
        # Under mixed precision the terms are summed in float32.
        nll, kl = self.terms([term.float() for term in output], target)
        return (nll + self.beta * kl).mean() / self.n_features


@fill_doc
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
    %(n_components)s
    beta : float, default=1.0
        Weight of the KL term in the training loss (beta-VAE), at most 1e10:
        the KL term outweighs the likelihood long before, and much larger
        weights overflow float32's gradients. Scores always use the true
        ELBO (weight 1). :meth:`partial_fit` reads it at each call, as it
        does ``alpha``.
    %(measured_hidden_layer_sizes, measured_activation, image_shape)s
    %(conv_channels)s
    init : {'pca', 'random'}, default='pca'
        Start from probabilistic PCA (plus zero residuals), or at random.
    loss : {'mse', 'bce'}, default='mse'
        Gaussian likelihood with a learned variance, or Bernoulli for data
        in [0, 1].
    %(batch_size, measured_learning_rate, learning_rate_init)s
    %(ema_decay, measured_alpha)s
    %(max_iter, tol)s
    early_stopping : bool, default=True
        Stop when the held-out training loss (the negative ELBO, its KL term
        weighted by ``beta``) stops improving; restore the best weights (the
        initial state included).
    %(validation_fraction, n_iter_no_change, device, precision, callbacks)s
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the weights, the batch order, the sampling during
        training and the fixed draws used for scoring.
    %(verbose)s

    Attributes
    ----------
    %(n_components_, n_components_pca_, mean_, n_samples_seen_)s
    data_min_ : ndarray of shape (n_features,)
        Per-feature minimum of the training data (of all rows
        :meth:`partial_fit` has seen), where ``sample(clip=True)`` clips.
    data_max_ : ndarray of shape (n_features,)
        Per-feature maximum of the training data, likewise.
    %(held_out_explained_variance_score_, explained_variance_)s
    %(n_iter_, partial_fit_training_plan_, best_epoch_)s
    loss_curve_ : list of float
        Training loss per epoch and feature (model units): the negative
        ELBO, its KL term weighted by ``beta``.
    validation_loss_curve_ : list of float or None
        The same loss on the held-out rows, per epoch and feature; None
        without early stopping and once ``partial_fit`` has trained (it
        holds nothing out).
    %(net_)s
    module_ : torch.nn.Module
        The fitted variational network.
    %(n_features_in_, feature_names_in_)s

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
        "beta": [Interval(Real, 0, _BETA_MAX, closed="both")],
    }

    __init__ = make_init({"beta": 1.0}, MEASURED_DEFAULTS)

    def _criterion(self, n_features):
        return _NegativeELBO(self.loss, self.beta, n_features)

    def _start(self, network, X_train, rng):
        """Start the linear paths at probabilistic PCA's solution.

        Returns ``(noise_var, logvar)`` for the likelihood and the posterior.
        """
        return ppca_start(
            network, X_train, self.n_components_, loss=self.loss, random_state=rng
        )

    def _wrap_network(self, network, start, X, device, rng):
        n_features = X.shape[1]
        # A random start: unit likelihood and posterior variances.
        noise_var, logvar = (1.0, 0.0) if start is None else start
        module = _Variational(
            network, n_features, self.n_components_, log_noise_var=np.log(noise_var)
        )
        if self.loss == "bce":
            # A Bernoulli likelihood has no variance: a parameter without a
            # gradient would leave DistributedDataParallel waiting for it.
            module.log_noise_var.requires_grad_(False)
        with torch.no_grad():
            module.logvar_head.bias.copy_(
                torch.as_tensor(np.broadcast_to(logvar, (self.n_components_,)).copy())
            )
        score_rng = np.random.RandomState(torch_seed(rng))
        module.score_eps.copy_(
            torch.as_tensor(score_rng.standard_normal(module.score_eps.shape))
        )
        module.generator = torch.Generator(device=device).manual_seed(
            rank_seed(torch_seed(rng))
        )
        return module

    def _next_partial_fit(self, X):
        # beta weighs the training loss: read at each call, as alpha is.
        self.net_.criterion_.beta = self.beta
        super()._next_partial_fit(X)

    def _training_pass(self, X, valid_idx):
        # fit and the first partial_fit count their own rows only in
        # n_samples_seen_: they set the range; a later partial_fit widens it.
        data_min, data_max = X.min(axis=0), X.max(axis=0)
        if self.n_samples_seen_ > len(X):
            data_min = np.minimum(self.data_min_, data_min)
            data_max = np.maximum(self.data_max_, data_max)
        attributes = super()._training_pass(X, valid_idx)
        return {**attributes, "data_min_": data_min, "data_max_": data_max}

    def score_samples(self, X):
        """Evidence lower bound of each row, in the data's units.

        A Monte Carlo estimate over fixed standard-normal draws shared by all
        rows: deterministic, and independent of batching. Each unit's draws
        have the prior's mean and variance, so that the estimate is exact
        for the untrained ``init='pca'`` start with ``loss='mse'``. Higher
        is more likely; low values flag unusual rows.

        %(parameters_X)s

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
            Per-row ELBO. With ``loss='mse'`` it bounds the log-density of
            the row in the data's units; with ``loss='bce'`` the Bernoulli
            log-likelihood of the row, likewise a lower bound.
        """
        check_is_fitted(self)
        check_rows_ndim(X, self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        # The likelihood the model was fitted with, whatever set_params changed.
        loss = self._units.loss
        check_bce_range(X, loss)
        criterion = _NegativeELBO(loss, 1.0, X.shape[1])
        # Rows were divided by the scale: the density picks up its Jacobian.
        log_jacobian = X.shape[1] * math.log(self._units.scale)

        def elbo(module, batch):
            # Over the module's fixed draws (score_draws), the estimate
            # early stopping watched, one draw at a time: all of them at
            # once would hold eight decodings of a batch of 4,096 rows. A
            # float64 network: the same for a row alone or in a batch.
            draws = module.score_draws()
            nll = 0.0
            for eps in draws:
                nll_s, kl = criterion.terms(module(batch, eps), batch)
                nll = nll + nll_s / len(draws)
            return -(nll + kl)

        return (
            self.net_.map_batches(X, elbo, self._units.to_model, dtype=torch.float64)
            - log_jacobian
        ).astype(X.dtype, copy=False)

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
            The decoder's mean for each draw, in the data's units; float64
            whatever the training data's dtype, as the codes are drawn in
            float64. A DataFrame with the original column names when pandas
            or polars output is set and ``fit`` saw feature names, as from
            :meth:`inverse_transform`, clipped or not.
        """
        check_is_fitted(self)
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
            raise TypeError(f"n_samples must be an int, got {n_samples!r}.")
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
        clip = check_flag("clip", clip)
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
