"""Training steps replayed as CUDA graphs: one launch per batch, not hundreds.

On a GPU, a training step of a small network costs more in the Python and
launch work that issues its kernels (forward, loss, backward and the
optimizer's update: a few hundred launches) than in the kernels themselves:
the first GPU check measured 2.3 ms per batch of 256 Fashion-MNIST rows on an
H200, for skae and for a hand-written loop alike. :class:`GraphedTrainStep`
records the whole step of one batch shape once as a
:class:`torch.cuda.CUDAGraph` and then replays it for every full batch of
that shape, after copying the batch into the graph's input.

A replay runs the same computation as the eager step, so the model trained
is the same up to the optimizer's arithmetic: Adam then keeps its step count
on the device (``capturable=True``) and updates every parameter in one fused
kernel (``fused=True``), which computes its bias corrections in float32
rather than in Python's float64. The last, shorter batch of an epoch
trains eagerly. Values the graph has baked in (the learning rate and the
other hyperparameters of the optimizer's groups) are watched: when one
changes, as a plateau schedule lowers the rate, the step is recorded anew.
Steps the graph cannot replay train eagerly: see :func:`unsupported`.
"""

import warnings

import torch
from skorch.callbacks import Callback

# Eager steps on a side stream before a step is recorded, as PyTorch asks:
# they set up the optimizer's state and the libraries' workspaces.
WARMUP_STEPS = 3
# A graph (or its warm-up) that the optimizer's values outlive by fewer
# replays than this was not worth recording: after SHORT_LIVED_LIMIT such
# changes in one run (a schedule that changes the rate every batch), the
# run goes on eagerly.
MIN_REPLAYS = 8
SHORT_LIVED_LIMIT = 3


def unsupported(net):
    """Return why ``net`` cannot train through CUDA graphs, or None if it can.

    Graphs need a CUDA device, one process (a data-parallel step
    communicates), no float16 loss scaling (its step reads the gradients on
    the host), an optimizer that can keep its state on the device, and no
    callback that reads the gradients between the backward pass and the
    update (``on_grad_computed``: inside a graph it would not run) or
    changes the learning rate every step (``learning_rate='one_cycle'``).
    """
    from skae._training import process_group

    if torch.device(net.device).type != "cuda":
        return "the device is not CUDA"
    if process_group()[1] > 1:
        return "data-parallel training synchronises the processes in each step"
    if net.precision == "float16":
        return "float16 loss scaling checks the gradients on the host each step"
    if not all("capturable" in group for group in net.optimizer_.param_groups):
        return f"{type(net.optimizer_).__name__} cannot keep its state on the device"
    for name, callback in net.callbacks_:
        if type(callback).on_grad_computed is not Callback.on_grad_computed:
            return f"the callback {name!r} reads the gradients in each step"
        if getattr(callback, "step_every", None) == "batch":
            # A graph holds the rate it was recorded with.
            return f"the callback {name!r} changes the learning rate in each step"
    if not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
        return "this torch cannot record seeded random generators in a graph"
    return None


class GraphedTrainStep:
    """Train full batches by replaying a recorded CUDA graph of the step.

    Made at the start of each training run, on a net whose optimizer exists.
    Call it with each training batch; it returns the step's
    ``{'loss': ..., 'y_pred': ...}`` as the eager step does.

    Parameters
    ----------
    net : AutoencoderNet
        The net to train; :func:`unsupported` must have returned None.

    Attributes
    ----------
    n_recordings : int
        How many times the step was recorded in this run.
    n_replays : int
        How many batches trained by replaying a graph in this run.
    disabled : str or None
        Why the run went on eagerly (the optimizer's values kept changing,
        or recording failed, which also warns), or None.
    """

    def __init__(self, net):
        self.net = net
        self.graph = None
        self.key = None
        self.n_warm = 0
        self.n_recordings = 0
        self.n_replays = 0
        self.disabled = None
        self._replays_of_graph = 0
        self._short_lived = 0
        self._generators = [
            module.generator
            for module in net.module_.modules()
            if isinstance(getattr(module, "generator", None), torch.Generator)
            and module.generator.device.type == "cuda"
        ]
        self._stream = torch.cuda.Stream(device=net.device)
        self._saved = self._graph_ready_optimizer()

    def close(self):
        """Free the graph; give the optimizer its own settings back."""
        self.graph = None
        for group, saved in zip(
            self.net.optimizer_.param_groups, self._saved, strict=True
        ):
            group.update(saved)

    def _graph_ready_optimizer(self):
        """Keep the optimizer's state on the device; update with fused kernels.

        Returns the groups' settings as they were, for :meth:`close`.
        """
        optimizer = self.net.optimizer_
        saved = []
        for group in optimizer.param_groups:
            saved.append(
                {key: group[key] for key in ("capturable", "fused") if key in group}
            )
            group["capturable"] = True
            if "fused" in group and not group.get("foreach"):
                # One kernel for the whole update instead of one per step of
                # the algorithm: a replay takes as long as its kernels.
                group["fused"] = True
            for param in group["params"]:
                state = optimizer.state.get(param, {})
                step = state.get("step")
                if step is not None and step.device != param.device:
                    state["step"] = step.to(param.device)
        return saved

    def _hyperparameters(self):
        """Return the optimizer's plain values, which a recorded graph holds fixed."""
        return tuple(
            tuple(
                (name, value)
                for name, value in group.items()
                if isinstance(value, (bool, int, float, tuple))
            )
            for group in self.net.optimizer_.param_groups
        )

    def __call__(self, batch, **fit_params):
        net = self.net
        Xi, yi = batch
        if self.disabled is not None or fit_params or len(Xi) != net.batch_size:
            return net.eager_train_step(batch, **fit_params)
        key = (self._hyperparameters(), Xi.shape, Xi.dtype, yi is Xi)
        if key != self.key:
            if self.key is not None and self._replays_of_graph < MIN_REPLAYS:
                self._short_lived += 1
                if self._short_lived == SHORT_LIVED_LIMIT:
                    self.disabled = (
                        "the optimizer's values changed every few batches "
                        "(a per-batch schedule?)"
                    )
                    self.graph = None
                    return net.eager_train_step(batch)
            self.key, self.graph, self.n_warm = key, None, 0
            self._replays_of_graph = 0
        if self.graph is None:
            if self.n_warm < WARMUP_STEPS:
                self.n_warm += 1
                return self._on_side_stream(batch)
            try:
                self._record(Xi, yi)
            except RuntimeError as error:
                # A step that cannot be recorded still trains, eagerly.
                self.disabled = f"recording the step failed: {error}"
                warnings.warn(
                    f"CUDA graphs are off for this fit: {self.disabled}",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self.graph = None
                return net.eager_train_step(batch)
        else:
            self._inputs.copy_(Xi)
            if self._targets is not self._inputs:
                self._targets.copy_(yi)
        if not net.module_.training:
            net._set_training(True)
        with torch.cuda.device(self._stream.device):
            self.graph.replay()
        self.n_replays += 1
        self._replays_of_graph += 1
        # Copies: the next replay overwrites the graph's outputs.
        return _map_tensors(torch.Tensor.clone, self._step)

    def _on_side_stream(self, batch):
        """Take an eager step on a side stream, as a warm-up before recording."""
        stream = self._stream
        stream.wait_stream(torch.cuda.current_stream(self.net.device))
        with torch.cuda.stream(stream):
            step = self.net.eager_train_step(batch)
        torch.cuda.current_stream(self.net.device).wait_stream(stream)
        # Detached: a loss kept alive with its autograd graph would tie the
        # parameters' gradient accumulators to this stream while recording.
        return _map_tensors(torch.Tensor.detach, step)

    def _record(self, Xi, yi):
        """Record forward, loss, backward and update of a batch like ``Xi``."""
        net = self.net
        self._inputs = Xi.clone()
        self._targets = self._inputs if yi is Xi else yi.clone()
        graph = torch.cuda.CUDAGraph()
        for generator in self._generators:
            graph.register_generator_state(generator)
        # Gradients set to None now are allocated by the recorded backward
        # pass, in the graph's memory, and overwritten by each replay.
        net.optimizer_.zero_grad(set_to_none=True)
        # On the net's device and a stream of its own: torch's default capture
        # stream belongs to whichever device was current when it was first
        # made (a fit on 'cuda:1' would record nothing). Thread-local errors:
        # fits in other threads may go on using CUDA while this one records.
        with (
            torch.cuda.device(self._stream.device),
            torch.cuda.graph(
                graph, stream=self._stream, capture_error_mode="thread_local"
            ),
        ):
            step = net.train_step_single((self._inputs, self._targets))
            net.optimizer_.step()
        self.graph = graph
        # Detached views of the graph's outputs: the recorded autograd graph
        # must not stay alive, or the gradient accumulators stay tied to the
        # recording stream and warn in the eager steps on other streams.
        self._step = _map_tensors(torch.Tensor.detach, step)
        self.n_recordings += 1
        self._replays_of_graph = 0


def _map_tensors(fn, value):
    """Apply ``fn`` to the tensors in a step's outputs (dicts, tuples, lists)."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {key: _map_tensors(fn, item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_map_tensors(fn, item) for item in value)
    return value
