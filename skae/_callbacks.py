"""scikit-learn's callback API (``sklearn.callback``) for skae's estimators.

scikit-learn 1.9 added an experimental callback API: estimators that inherit
:class:`sklearn.callback.CallbackSupportMixin` accept callbacks through
``set_callbacks`` and describe ``fit`` as a tree of tasks. skae's ``fit`` is a
root task with one sub-task per epoch; :class:`EpochTasks` is the skorch
callback that opens and closes those epoch tasks inside skorch's fit loop, so
skorch's callbacks and scikit-learn's observe the same epochs.

skae supports older scikit-learn too. There, ``sklearn.callback`` does not
import, and :class:`CallbackSupportMixin` is a stand-in whose
``set_callbacks`` warns that the callbacks are ignored.
"""

import warnings
from contextlib import contextmanager

import sklearn
from skorch.callbacks import Callback

__all__ = ["SKLEARN_CALLBACKS", "CallbackSupportMixin", "EpochTasks", "fit_task"]


class _NoTask:
    """The root task where scikit-learn has no callback API: calls do nothing."""

    def call_on_fit_task_begin(self, **kwargs):
        return self

    def call_on_fit_task_end(self, **kwargs):
        return False


class _NoCallbackSupportMixin:
    """Stand-in for ``CallbackSupportMixin`` on scikit-learn < 1.9."""

    def set_callbacks(self, *callbacks):
        """Ignore ``callbacks``: this scikit-learn has no callback API.

        Parameters
        ----------
        *callbacks : callback instances
            The callbacks, ignored.

        Returns
        -------
        self : estimator instance
            The estimator instance itself.
        """
        warnings.warn(
            f"set_callbacks needs scikit-learn >= 1.9 (sklearn.callback), but "
            f"scikit-learn {sklearn.__version__} is installed: the callbacks are "
            f"ignored and {type(self).__name__} trains without them. Upgrade "
            "scikit-learn to use them.",
            UserWarning,
            stacklevel=2,
        )
        return self

    def _init_callback_context(self, max_subtasks=0):
        return _NoTask()


try:
    from sklearn.callback import CallbackSupportMixin

    SKLEARN_CALLBACKS = True
except ImportError:
    CallbackSupportMixin = _NoCallbackSupportMixin
    SKLEARN_CALLBACKS = False


class EpochTasks(Callback):
    """skorch callback that runs each epoch as a scikit-learn fit task.

    At the start of every epoch it opens a sub-task of ``context`` (the root
    task of the estimator's ``fit``) and calls the ``on_fit_task_begin`` hooks;
    at the end it calls the ``on_fit_task_end`` hooks. When one of them returns
    True, it asks the net to stop (:meth:`AutoencoderNet.request_stop`), which
    ends skorch's loop once every skorch callback has seen the epoch: early
    stopping still counts it and restores the best weights.

    It is placed before skorch's early stopping, so that an epoch that early
    stopping ends has been closed here first.

    Parameters
    ----------
    estimator : skae estimator
        The estimator being fitted, passed to the hooks.
    context : sklearn.callback.CallbackContext
        The root task of ``estimator.fit``.
    X, y : object
        The data as the user passed them to ``fit``, passed to the hooks.
    """

    def __init__(self, estimator, context, X, y):
        self.estimator = estimator
        self.context = context
        self.X = X
        self.y = y
        # Set by the estimator once its rows are ready: net -> the attributes
        # of the pass over the training rows that follows training.
        self.training_pass = None

    def __getstate__(self):
        # The references are the live fit's: a copy or pickle of the net (a
        # hook's fitted_estimator shares this callback with the training
        # net) neither needs nor can always carry the estimator, the task
        # tree, the data or the pass over them (a closure).
        state = self.__dict__.copy()
        state.update(estimator=None, context=None, X=None, y=None, training_pass=None)
        state.pop("task_", None)
        return state

    def on_train_begin(self, net, **kwargs):
        self.task_ = None
        # The root task begins with training, once max_iter='auto' is a
        # count of epochs: a progress bar then knows its length.
        self.context.max_subtasks = net.max_epochs
        self.context.call_on_fit_task_begin(
            estimator=self.estimator, X=self.X, y=self.y
        )

    def _hook_kwargs(self, net, n_epochs):
        return dict(
            estimator=self.estimator,
            X=self.X,
            y=self.y,
            reconstruction_attributes=lambda: self._reconstruction_attributes(
                net, n_epochs
            ),
        )

    def _reconstruction_attributes(self, net, n_epochs):
        """Fitted attributes of the model after ``n_epochs`` epochs of ``net``.

        Called only when a hook asks for ``fitted_estimator``: set on a copy
        of the estimator, they let it transform, inverse-transform and score
        as the model stands then, with what the pass over the training rows
        after training sets (the explained variance, an ordered model's
        kept width, a detector's error scales and threshold), computed on
        this copy of the network. The other attributes these need
        (``mean_``, the scaling) are set before training.
        """
        history = net.history[:n_epochs]
        snapshot = net.snapshot(n_epochs)
        attributes = {
            "net_": snapshot,
            "n_iter_": n_epochs,
            # The copy keeps the weights of its own epoch, not the best
            # ones: a refit's copy would otherwise show the last fit's.
            "best_epoch_": n_epochs,
            "loss_curve_": [row["train_loss"] for row in history],
            "validation_loss_curve_": (
                [row["valid_loss"] for row in history]
                if self.estimator.early_stopping
                else None
            ),
        }
        if self.training_pass is not None:
            attributes.update(self.training_pass(snapshot))
        return attributes

    def on_epoch_begin(self, net, **kwargs):
        self.task_ = self.context.subcontext(task_name="epoch")
        # The net has already added this epoch's (empty) row to its history.
        self.task_.call_on_fit_task_begin(
            **self._hook_kwargs(net, len(net.history) - 1)
        )

    def on_epoch_end(self, net, **kwargs):
        task, self.task_ = self.task_, None
        if task.call_on_fit_task_end(**self._hook_kwargs(net, len(net.history))):
            net.request_stop()

    def on_train_end(self, net, **kwargs):
        # A loop interrupted inside an epoch (KeyboardInterrupt from a skorch
        # callback's on_epoch_begin or on_batch_*, or the user's Ctrl-C)
        # leaves its task open: it ends as an empty task.
        if self.task_ is not None:
            self.task_.call_on_fit_task_end(estimator=self.estimator)
            self.task_ = None
        # The fitted net keeps its callbacks: do not keep the data and the
        # task tree with them.
        self.estimator = self.context = self.X = self.y = None
        self.training_pass = None


@contextmanager
def fit_task(estimator, X, y, *, epochs=True):
    """Run a fit as scikit-learn's root task, with one sub-task per epoch.

    Yields the :class:`EpochTasks` callback for the net, or None when the
    estimator has no scikit-learn callbacks. ``X`` and ``y`` are the data as
    the user passed them. The root task begins when training does
    (:meth:`EpochTasks.on_train_begin`), when ``max_iter='auto'`` has been
    resolved for the data. The callbacks are torn down by ``_fit_context``,
    also when the fit raises.

    ``epochs=False``: a ``partial_fit`` call, one epoch, as scikit-learn's
    own ``partial_fit`` methods (``StandardScaler``) run it: a root task
    without sub-tasks; it yields None.

    The root task's ``on_fit_task_end`` hooks get the estimator as the call
    leaves it as ``fitted_estimator``, with a copy of the network.
    """
    # The count of epochs is set when training begins (EpochTasks); without
    # scikit-learn callbacks nothing reads it.
    context = estimator._init_callback_context(max_subtasks=None if epochs else 0)
    epoch_tasks = None
    if epochs and getattr(estimator, "_skl_callbacks", None):
        # The epochs are skorch's: the tasks run as a callback of the net.
        epoch_tasks = EpochTasks(estimator, context, X, y)
    else:
        context.call_on_fit_task_begin(estimator=estimator, X=X, y=y)
    yield epoch_tasks
    # The model as the call leaves it, on a copy of the network: training
    # goes on in place, so a fitted_estimator that shared it changed with
    # the next partial_fit, and training it trained the estimator.
    net = estimator.net_
    context.call_on_fit_task_end(
        estimator=estimator,
        X=X,
        y=y,
        reconstruction_attributes=lambda: {"net_": net.snapshot(len(net.history))},
    )
