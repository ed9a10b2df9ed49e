"""Train and evaluate one candidate arch (a :class:`Trial`), resumably.

A trial owns its model, its Adam optimizer, its learning-rate schedule and its shuffling
generator, so :func:`train` can be called again later and continue exactly where it stopped:
successive halving trains a survivor for more epochs without restarting it.

Training follows TRAILS: the task's loss (cross-entropy for a classifier, MSE on the
standardised target for regression: :meth:`trails.task.Task.loss`), Adam (``[refinement] learning_rate``), batches of
``batch_size`` rows, an epoch capped at ``iter_per_epoch`` iterations. Each epoch draws a fresh
permutation of the split on the data's device and indexes the device tensors with it (no
DataLoader, no host round trip per batch). A batch is always full: an epoch is
``min(iter_per_epoch, N // batch_size)`` iterations (one batch of all N rows when N <
batch_size), so BatchNorm never sees a batch of one row.

**Learning-rate schedule.** Cosine decay from the learning rate to 0 over the most iterations
the trial may ever train: ``max_epochs × iterations per epoch`` (successive halving's R). A
model stopped at an early rung is therefore compared with the others at the same, still high,
learning rate, and a survivor continues the *same* curve instead of restarting a fresh one —
restarting would undo the warm start (a jump back to the full rate) and make a rung's result
depend on how many rungs came before it. A model that trains to R ends annealed, as in TRAILS.

With a finishing phase (what ``model_selection`` runs: ``successive_halving(finish=True)``),
candidates train at a constant rate instead, and the winner's rate then decays by a cosine
from where it is to 0 over exactly the iterations that fit before the deadline
(:meth:`Trial.anneal`), so the returned model ends annealed whatever the budget.

**Recipe.** Beyond the rate and the batch, ``settings`` carries the recipe's regularisation
(an MLP candidate's :class:`~trails.refinement.recipe.Recipe` applied to the run's settings):
``dropout`` after each hidden ReLU (its masks windows of a pool drawn each epoch from the
global RNG seeded from the trial's generator: :class:`~trails.model.ReLUDropout`; a resumed trial
continues exactly), ``weight_decay`` (AdamW, Linear
weights only) and ``embedding_l2`` (a penalty on the embeddings each batch uses, added to the
loss). With none of them the loop is TRAILS' plain one, unchanged.

**What an epoch is.** ``min(iter_per_epoch, N // batch_size)`` iterations: at most
``iter_per_epoch × batch_size`` rows (102,400 with the defaults), not a pass over the train
split on a large table: on frappe's 202,027 train rows half a pass; on uci_diabetes' 81,412 and
movielens' 70,003 one pass (``N // batch_size`` caps it: 159 and 136 iterations). An epoch is the unit successive halving and the cost model
plan in; a fixed number of rows makes an epoch of every candidate cost the same whatever the
table's size, so a rung on a large table is not one huge pass. The finishing phase evaluates the
winner after every epoch and keeps the best-validated weights
(:mod:`trails.refinement.finishing`).

**Threads.** On the CPU, training runs with ``settings.train_threads`` torch threads (one by
default), restored after. trails sets OpenMP's waits passive (:mod:`trails`: a spinning thread
steals the cores other backends need), and a passive thread is slow to wake between the small
matmuls of a training step: on this session's 2-core Intel Xeon, alone, a step of
512-128-48-512 took 11.2 ms with two passive threads, 5.5 ms with one, 4.2 ms with two spinning
ones; beside one busy process 6.0, 5.0 and 16.5 ms. One thread is the robust choice; evaluation
and filtering keep the process's threads (larger batches).

**Precision.** ``[refinement] precision`` (``auto``, ``fp32``, ``bf16``) is resolved once
per trial by :func:`~trails.refinement.precision.resolve_precision`: with bfloat16, the forward
pass and the loss run under ``torch.autocast``, the backward pass and Adam's step outside it,
and the weights stay float32; with float32 the loop is the plain one, unchanged.

Metric: the task's (:meth:`trails.task.Task.score`; ROC-AUC of the positive-class probability
for a binary label by default) over the whole split, not an average over batches, always
computed from a float32 forward pass (:func:`evaluate`; probabilities in float64).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence

import sklearn.metrics  # noqa: F401  (Task.score's metrics, seconds to import cold: not inside a timed evaluation)
import torch

from trails.errors import TrailsError
from trails.refinement.data import SplitTensors
from trails.refinement.precision import resolve_precision
from trails.refinement.settings import TrainingSettings
from trails.model import ReLUDropout, build_model, predict_outputs
from trails.piecewise import numeric_bins_of
from trails.space import arch_text
from trails.task import BINARY_01, Task


class Cancelled(Exception):
    """Training stopped because ``should_stop()`` returned true (a user's cancel)."""


def default_device() -> torch.device:
    """CUDA when ``torch.cuda.is_available()``, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def warm_up_optimizer() -> None:
    """Construct one throw-away Adam optimizer: the first one in a process imports
    ``torch._dynamo`` lazily (about 2 s on a slow CPU), which would otherwise land inside a
    job's first candidate, where no cancel or deadline is checked. The refinement service
    calls this once at start."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def throttled(check: Callable[[], object], seconds: float = 0.1) -> Callable[[], bool]:
    """A ``should_stop`` that calls ``check()`` at most once per ``seconds`` (False otherwise).

    In a backend, ``throttled(lambda: plpy.execute("SELECT 1") and False)`` lets
    ``pg_cancel_backend`` and ``statement_timeout`` interrupt training: the SPI call raises
    ``QueryCanceled`` once a cancel is pending, and that exception propagates out of
    :func:`train`, at the cost of one SPI round trip per ``seconds``.
    """
    last = [-float("inf")]

    def should_stop() -> bool:
        now = time.monotonic()
        if now - last[0] < seconds:
            return False
        last[0] = now
        return bool(check())

    return should_stop


def iterations_per_epoch(n_rows: int, batch_size: int, iter_per_epoch: int) -> int:
    """Iterations in one epoch over ``n_rows`` rows: ``min(iter_per_epoch, N // batch_size)``,
    at least 1 (one batch of all rows when ``N < batch_size``)."""
    return max(1, min(int(iter_per_epoch), int(n_rows) // int(batch_size)))


HELD_ITERATIONS = 10**12
"""The cosine horizon of a held rate (:meth:`Trial.step_down`): its factor stays 1 to 1e-13."""


class CosineDecay:
    """Learning-rate factor at iteration ``t``: ``½(1 + cos(π · min(t, T) / T))``, from 1 to 0
    over ``T`` iterations, then 0 (a class, not a lambda, so a scheduler state pickles)."""

    def __init__(self, total_iterations: int):
        self.total_iterations = max(1, int(total_iterations))

    def __call__(self, iteration: int) -> float:
        progress = min(iteration, self.total_iterations) / self.total_iterations
        return 0.5 * (1.0 + math.cos(math.pi * progress))


class Trial:
    """One candidate being trained: model + Adam + cosine schedule + shuffling generator.

    Args:
        arch: hidden widths, e.g. ``(8, 16, 32, 64)``.
        n_ids, n_fields: the layout's embedding-table size and fields per row.
        max_iterations: iterations the trial may train at most (the cosine horizon, see the
            module docstring): ``max_epochs × iterations_per_epoch(...)``.
        settings: :class:`TrainingSettings` (learning rate, embedding size, BatchNorm,
            precision).
        seed: initialises the weights and the per-epoch permutations; the same seed, arch and
            data give the same trained model on the CPU.
        device: where the model lives (the training data must be there too).
        task: what the network predicts: its output width and loss (binary 0/1 by default).

    Attributes:
        epochs_trained: complete epochs trained so far.
        iterations: iterations trained so far (a deadline may stop one mid-epoch).
        train_seconds: wall time those iterations took.
        epoch_losses: mean training loss of every complete epoch, first first.
        autocast_dtype: what the forward pass of training autocasts to (``torch.bfloat16``), or
            None for plain float32: ``settings.precision`` resolved for ``device``.

    Raises:
        TrailsError: for a precision that is unknown or not supported on ``device``.
    """

    def __init__(self, arch: Sequence[int], n_ids: int, n_fields: int, max_iterations: int,
                 settings: TrainingSettings, seed: int = 0, device="cpu", task: Task = BINARY_01):
        self.arch = tuple(int(width) for width in arch)
        self.task = task
        self.seed = int(seed)
        self.settings = settings
        self.device = torch.device(device)
        self.autocast_dtype = resolve_precision(settings.precision, self.device)
        with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
            torch.manual_seed(self.seed)
            model = build_model(self.arch, n_ids, n_fields, settings.embedding_dim, settings.batch_norm,
                                n_outputs=task.n_outputs, dropout=settings.dropout,
                                numeric=numeric_bins_of(settings.numeric_edges, settings.numeric_bins))
        self.model = model.to(self.device)
        self.optimizer = _optimizer(self.model, settings)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, CosineDecay(max_iterations))
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)
        self.epochs_trained = 0
        self.iterations = 0
        self.train_seconds = 0.0  # wall time spent in train() iterations
        self.epoch_losses: list[float] = []

    @property
    def learning_rate(self) -> float:
        """The learning rate the next iteration uses."""
        return float(self.optimizer.param_groups[0]["lr"])

    def anneal(self, iterations: int) -> None:
        """Replace the learning-rate schedule by a cosine decay from the current learning rate
        to 0 over the next ``iterations`` iterations (no jump: it starts where the old one is).
        The finishing phase uses it so that the winner ends annealed after exactly the
        iterations it really gets."""
        current = self.learning_rate
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] = current
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, CosineDecay(iterations))

    def step_down(self, factor: float) -> None:
        """Multiply the learning rate by ``factor`` and hold it there (a constant schedule from
        now on): the plateau schedule's step (:mod:`trails.refinement.finishing`)."""
        lowered = self.learning_rate * float(factor)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] = lowered
        # a cosine far longer than any run: held, and its state travels as a CosineDecay's does
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, CosineDecay(HELD_ITERATIONS))

    @property
    def seconds_per_iteration(self) -> float | None:
        """Measured training seconds per iteration so far (None before any)."""
        return self.train_seconds / self.iterations if self.iterations else None

    @property
    def candidate(self):
        """This trial's :class:`~trails.families.base.Candidate` (the MLP family, its arch;
        the resumed candidate it was given, for one started from stored weights)."""
        from trails.families.base import DEFAULT_FAMILY, Candidate  # families import this module

        return self.__dict__.get("_candidate") or Candidate(DEFAULT_FAMILY, self.arch)

    @candidate.setter
    def candidate(self, candidate) -> None:
        self._candidate = candidate

    def snapshot(self) -> dict:
        """The model's weights now, as CPU tensors (:meth:`state_dict_cpu`)."""
        return self.state_dict_cpu()

    def state_dict_cpu(self) -> dict:
        """A copy of the model's weights as CPU tensors (for storing or shipping)."""
        return {name: tensor.detach().to("cpu", copy=True)
                for name, tensor in self.model.state_dict().items()}

    def export_state(self) -> dict:
        """Everything needed to continue this trial in another process or on another machine, as
        CPU tensors and plain values: arch, seed, its settings (the run's with its recipe),
        weights, Adam's state, the learning-rate schedule, the shuffling generator's state and
        the counters. :meth:`from_state` rebuilds it; training the rebuilt trial continues
        exactly as this one would have."""
        return {"arch": self.arch, "seed": self.seed, "settings": self.settings.to_json(), "model": self.state_dict_cpu(),
                "optimizer": _to_cpu(self.optimizer.state_dict()),
                "scheduler": self.scheduler.state_dict(), "generator": self.generator.get_state(),
                "epochs_trained": self.epochs_trained, "iterations": self.iterations,
                "train_seconds": self.train_seconds, "epoch_losses": list(self.epoch_losses)}

    @classmethod
    def from_state(cls, state: dict, n_ids: int, n_fields: int, settings: "TrainingSettings",
                   device="cpu", task: Task = BINARY_01) -> "Trial":
        """The trial :meth:`export_state` returned ``state`` of, on ``device`` (the layout's
        ``n_ids``/``n_fields`` and ``task`` must be those it was created with; its own settings
        travel in ``state``, ``settings`` is for a state without them)."""
        settings = TrainingSettings.from_json(state["settings"]) if "settings" in state else settings
        trial = cls(state["arch"], n_ids, n_fields, 1, settings, state["seed"], device, task)
        trial.model.load_state_dict(state["model"])
        trial.optimizer.load_state_dict(state["optimizer"])
        trial.scheduler.load_state_dict(state["scheduler"])
        trial.generator.set_state(state["generator"])
        trial.epochs_trained, trial.iterations = int(state["epochs_trained"]), int(state["iterations"])
        trial.train_seconds, trial.epoch_losses = float(state["train_seconds"]), list(state["epoch_losses"])
        return trial

    def __repr__(self) -> str:
        return (f"Trial(arch={arch_text(self.arch)}, epochs_trained={self.epochs_trained}, "
                f"iterations={self.iterations})")


def _optimizer(model: torch.nn.Module, settings: TrainingSettings) -> torch.optim.Optimizer:
    """Adam at ``settings.learning_rate``; with ``settings.weight_decay``, AdamW whose decay
    applies to the Linear weights only (biases, BatchNorm and the embedding table: none)."""
    if not settings.weight_decay:
        return torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    decayed = [p for name, p in model.named_parameters() if name.startswith("mlp.") and p.dim() > 1]
    kept = [p for name, p in model.named_parameters() if not (name.startswith("mlp.") and p.dim() > 1)]
    return torch.optim.AdamW([{"params": decayed, "weight_decay": settings.weight_decay},
                              {"params": kept, "weight_decay": 0.0}], lr=settings.learning_rate)


def _to_cpu(value):
    """``value`` (nested dicts/lists of tensors, e.g. an optimizer's state) with every tensor
    copied to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(item) for item in value)
    return value


def train(trial: Trial, data: SplitTensors, epochs: int, batch_size: int, iter_per_epoch: int,
          deadline: float | None = None, should_stop: Callable[[], bool] | None = None,
          on_epoch: Callable[[Trial, float], None] | None = None) -> list[float]:
    """Train ``trial`` for ``epochs`` more epochs on ``data``, continuing its state.

    Args:
        trial: the candidate; its weights, optimizer, schedule and generator advance.
        data: the train split, on ``trial.device``: a :class:`SplitTensors`, or a
            :class:`~trails.refinement.stream.GrowingSplit` still being read, of which each
            epoch uses the rows read when it starts (its ``visible()`` rows).
        epochs: epochs to add, ≥ 0.
        batch_size, iter_per_epoch: see the module docstring.
        deadline: a ``time.monotonic()`` value; checked before every iteration. When it has
            passed, training stops there and the losses of the complete epochs are returned
            (fewer than ``epochs``; the interrupted epoch's iterations stay applied but are not
            counted in ``trial.epochs_trained``).
        should_stop: checked before every iteration (keep it cheap); when it returns true,
            :class:`Cancelled` is raised. An exception it raises itself propagates.
        on_epoch: called as ``on_epoch(trial, mean_loss)`` after each complete epoch.

    Returns:
        The mean training loss (the task's) of each complete epoch, in order.

    Raises:
        Cancelled: when ``should_stop()`` returned true.
        TrailsError: for an empty split or a non-positive size.
    """
    if len(data) == 0:
        raise TrailsError("the train split holds no rows", hint="check the dataset's train table")
    if int(batch_size) < 1 or int(iter_per_epoch) < 1 or int(epochs) < 0:
        raise TrailsError(f"batch_size ({batch_size}) and iter_per_epoch ({iter_per_epoch}) must be "
                          f">= 1 and epochs ({epochs}) >= 0")
    started = time.monotonic()
    try:
        with _intra_op_threads(trial.settings.train_threads if trial.device.type == "cpu" else 0):
            return _train_epochs(trial, data, int(epochs), int(batch_size), int(iter_per_epoch), deadline,
                                 should_stop, on_epoch)
    finally:
        trial.train_seconds += time.monotonic() - started


def _train_epochs(trial: Trial, split, epochs: int, max_batch_size: int, iter_per_epoch: int,
                  deadline, should_stop, on_epoch) -> list[float]:
    """The loop of :func:`train` (arguments checked there)."""
    # trial.scheduler is read at each step: an on_epoch callback may replace it (plateau steps)
    model, optimizer, task = trial.model, trial.optimizer, trial.task
    model.train()
    forward_context = _forward_context(trial)
    embedding_l2 = trial.settings.embedding_l2
    losses: list[float] = []
    for _ in range(epochs):
        data = split.visible()  # every row, or those read so far of a split still being read
        n_rows = len(data)
        batch_size = min(max_batch_size, n_rows)
        per_epoch = iterations_per_epoch(n_rows, batch_size, iter_per_epoch)
        order = torch.randperm(n_rows, generator=trial.generator, device=data.device)
        loss_sum = torch.zeros((), device=data.device)  # summed on the device: no sync per batch
        with _dropout_seeded(trial):  # dropout draws from the trial's generator, not the global RNG
            for step in range(per_epoch):
                if should_stop is not None and should_stop():
                    raise Cancelled(f"training of {arch_text(trial.arch)} was cancelled")
                if deadline is not None and time.monotonic() >= deadline:
                    return losses
                rows = order[step * batch_size:(step + 1) * batch_size]
                with forward_context:
                    ids = data.ids[rows]
                    logits = model(ids, data.values[rows])
                    loss = task.loss(logits, data.labels[rows])
                    if embedding_l2:
                        loss = loss + embedding_l2 * model.embedding(ids).pow(2).sum(dim=(1, 2)).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                trial.scheduler.step()
                loss_sum += loss.detach()
                trial.iterations += 1
        mean_loss = float(loss_sum.item()) / per_epoch
        losses.append(mean_loss)
        trial.epoch_losses.append(mean_loss)
        trial.epochs_trained += 1
        if on_epoch is not None:
            on_epoch(trial, mean_loss)
    return losses


@contextlib.contextmanager
def _intra_op_threads(threads: int):
    """torch's intra-op threads set to ``threads`` (0: left as they are), restored after."""
    before = torch.get_num_threads()
    if threads and threads != before:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _dropout_seeded(trial: Trial):
    """For a trial with dropout, a context in which torch's global RNG (what dropout draws its
    masks from) is seeded from the trial's own generator, and restored after: dropout is then
    reproducible and continues exactly when the trial is resumed elsewhere. Without dropout, a
    context that does nothing (and draws nothing from the generator)."""
    if not trial.settings.dropout:
        return contextlib.nullcontext()
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=trial.generator, device=trial.generator.device).item())
    return _seeded_global_rng(seed, trial.model, trial.device)


@contextlib.contextmanager
def _seeded_global_rng(seed: int, model: torch.nn.Module, device: torch.device):
    """The global RNG seeded with ``seed`` (restored after), and a new mask pool in each of
    ``model``'s dropout layers (:class:`~trails.model.ReLUDropout`)."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for module in model.modules():
            if isinstance(module, ReLUDropout):
                module.refresh()
        yield


def _forward_context(trial: Trial):
    """``torch.autocast`` to ``trial.autocast_dtype`` on the trial's device type, or a context
    that does nothing for float32 (reusable: entered once per iteration)."""
    if trial.autocast_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=trial.device.type, dtype=trial.autocast_dtype)


def evaluate(model: torch.nn.Module, data: SplitTensors, task: Task, batch_size: int = 8192) -> float:
    """``task.metric`` of ``model`` over all rows of ``data`` (outputs in float64).

    Raises:
        TrailsError: when the metric is undefined on the split (e.g. ROC-AUC of one class).
    """
    labels = data.labels.cpu().numpy()
    return task.score(labels, predict_outputs(model, task, data.ids, data.values, batch_size))


def evaluate_auc(model: torch.nn.Module, data: SplitTensors, batch_size: int = 8192) -> float:
    """ROC-AUC of a binary (0/1) model's class-1 probability over all rows of ``data``
    (:func:`evaluate` with the binary task; the baselines of ``exps/`` use it).

    Raises:
        TrailsError: when ``data`` does not hold both classes (AUC is undefined).
    """
    return evaluate(model, data, BINARY_01, batch_size)
