"""The PyTorch training steps that the step benchmarks compare (CPU and GPU).

Every step is ``zero_grad -> loss = forward_loss(x, y) -> backward -> SGD step``;
only ``forward_loss`` differs between the methods, with the library's defaults
(:mod:`divweights_train.config`):

* ``CE``: ``F.cross_entropy(model(x), y)``;
* ``CIW``: ``ReweightedLoss()`` (KL, exact radius from the tracked noise rate: ``delta="auto"``, the default);
* ``CICW``: ``ReweightedLoss(classes=ReverseKL(), gamma=0.3)``;
* ``CICW-M``: a no-grad forward pass gives the weights of the clean batch,
  ``weighted_mixup(mode="sample_weight")`` mixes the batch, and
  ``ReweightedLoss(delta=0.1, classes=ReverseKL(), gamma=0.3)`` is computed on
  the mixed batch (weights recomputed on it), as ``--method cicw-m`` trains;
* ``CE + clean forward`` (a reference, no goal): a CE step plus the no-grad
  forward pass of CICW-M, the part of its cost that no reweighting can save.

Compiled steps use ``torch.compile(fullgraph=True)`` (the backward pass is then
compiled too), over the whole ``forward_loss`` or over what follows the logits
(see :func:`forward_loss_fn`). A step that cannot be compiled, or that needs
more than :data:`MAX_GRAPHS` graphs, raises while it is warmed up;
:func:`build_runner` reports that as a reason instead of a runner.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from divweights_torch import ReweightedLoss, weighted_mixup

from divweights import ReverseKL

#: Ratio goals (method step / CE step, same mode, same run) of issue #10.
GOALS = {"CIW": 1.03, "CICW": 1.03, "CICW-M": 1.3}
#: A compiled step may use at most this many graphs over a run (issue #10); one more is a failure.
MAX_GRAPHS = 2
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Method:
    name: str
    kind: str  # ce | ciw | cicw | cicw-m | ce-fwd
    description: str

    @property
    def goal(self) -> float | None:
        return GOALS.get(self.name)


METHODS = (
    Method("CE", "ce", "F.cross_entropy"),
    Method(
        "CE again",
        "ce",
        "A/A control: the same CE step, timed separately (the noise floor)",
    ),
    Method("CIW", "ciw", "ReweightedLoss(): KL, exact radius from the tracked noise rate (delta='auto', the default)"),
    Method("CICW", "cicw", "ReweightedLoss(classes=ReverseKL(), gamma=0.3)"),
    Method(
        "CICW-M",
        "cicw-m",
        "clean-batch weights, weighted_mixup(sample_weight), KL delta=0.1 + ReverseKL 0.3",
    ),
    Method(
        "CE + clean forward",
        "ce-fwd",
        "a CE step on the batch in reverse order plus a no-grad forward of the batch, whose logits enter the "
        "loss times 0 (so that no compiler drops them): the floor of any step that weighs the clean batch "
        "before mixing it, as CICW-M does",
    ),
)


def make_loss(kind: str):
    if kind in ("ce", "ce-fwd"):
        return None
    if kind == "ciw":
        return ReweightedLoss()
    if kind == "cicw":
        return ReweightedLoss(classes=ReverseKL(), gamma=0.3)
    if kind == "cicw-m":
        return ReweightedLoss(delta=0.1, classes=ReverseKL(), gamma=0.3)
    raise ValueError(f"unknown method kind {kind!r}")


def own_code(fn: Callable, tag: str) -> Callable:
    """``fn`` with a code object of its own: torch.compile caches (and counts recompiles) per code object,
    so steps built from the same ``def`` would otherwise share, and evict, one another's graphs."""
    code = fn.__code__.replace(co_name=f"{fn.__name__}_{tag}")
    return types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)


def calls(module: torch.nn.Module) -> Callable:
    """A plain function ``inputs -> module(inputs)`` (to compile with a code object of its own)."""

    def call(inputs):
        return module(inputs)

    return call


def forward_loss_fn(
    model,
    kind: str,
    num_classes: int,
    *,
    compile_scope: str | None = None,
    tag: str = "",
):
    """``(x, y) -> loss`` of one method (see the module docstring).

    ``compile_scope``: ``None`` (eager), ``"step"`` (the whole function under
    ``torch.compile(fullgraph=True)``: model, weights and loss in one graph, as
    a user compiles ``loss_fn(model(x), y)``) or ``"loss"`` (only what follows
    the logits is compiled with ``fullgraph=True``; ``model`` is used as given,
    e.g. a ``torch.compile``-d model shared by all methods, which compiles once).
    """
    tag = tag or kind
    loss_fn = make_loss(kind)

    def head(logits, y):
        return F.cross_entropy(logits, y) if loss_fn is None else loss_fn(logits, y)

    def mix(logits0, x, y):
        w = loss_fn.weights(logits0, y)
        mx, my, _ = weighted_mixup(x, y, w, mode="sample_weight", num_classes=num_classes)
        return mx, my

    if compile_scope == "loss":
        head = torch.compile(own_code(head, f"{tag}_head"), fullgraph=True)
        mix = torch.compile(own_code(mix, f"{tag}_mix"), fullgraph=True)
    elif compile_scope not in (None, "step"):
        raise ValueError(f"compile_scope must be None, 'step' or 'loss', not {compile_scope!r}")

    if kind == "cicw-m":

        def forward_loss(x, y):
            with torch.no_grad():
                logits0 = model(x)
            mx, my = mix(logits0, x, y)
            return head(model(mx), my)

    elif kind == "ce-fwd":

        def forward_loss(x, y):
            with torch.no_grad():
                logits0 = model(x)
            # another batch for the trained forward (a compiler would merge two forwards of one input)
            return head(model(x.flip(0)), y.flip(0)) + 0.0 * logits0.sum()

    else:

        def forward_loss(x, y):
            return head(model(x), y)

    if compile_scope == "step":
        return torch.compile(own_code(forward_loss, tag), fullgraph=True)
    return forward_loss


def graph_count() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def quiet_compiler(recompile_limit: int | None = MAX_GRAPHS) -> None:
    """Compile failures are reported in the table, not as pages of log; optionally cap recompiles."""
    torch._logging.set_logs(dynamo=logging.ERROR, inductor=logging.ERROR)
    warnings.filterwarnings("ignore", module=r"torch\._dynamo.*")
    warnings.filterwarnings("ignore", module=r"torch\._inductor.*")
    if recompile_limit is not None:
        torch._dynamo.config.recompile_limit = recompile_limit


class Runner:
    """One method's training step: ``zero_grad``, ``forward_loss`` (under autocast if asked), backward, SGD.

    With ``copy_model`` the runner trains its own copy of ``model``; otherwise it
    shares ``model`` (and ``step_model``, e.g. its compiled wrapper) with other
    runners, which does not change the time of a step.
    """

    def __init__(
        self,
        model,
        method: Method,
        x,
        y,
        *,
        num_classes: int,
        compile_scope: str | None = None,
        autocast_dtype: torch.dtype | None = None,
        tag: str = "",
        copy_model: bool = True,
        step_model=None,
    ):
        self.method = method
        self.model = copy.deepcopy(model) if copy_model else model
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.forward_loss = forward_loss_fn(
            self.model if step_model is None else step_model,
            method.kind,
            num_classes,
            compile_scope=compile_scope,
            tag=tag or method.name.replace(" ", "_"),
        )
        self.compiled = compile_scope is not None
        self.x, self.y = x, y
        self.device_type = x.device.type
        self.autocast_dtype = autocast_dtype
        self.graphs = 0

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        ctx = (
            torch.autocast(self.device_type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with ctx:
            loss = self.forward_loss(self.x, self.y)
        loss.backward()
        self.opt.step()
        return loss


def build_runner(model, method, x, y, *, warmup: int = 3, **kwargs):
    """``(runner, None)`` after ``warmup`` steps, or ``(None, reason)`` when a step fails or does not compile.

    ``kwargs`` go to :class:`Runner`; ``runner.graphs`` is the number of graphs compiled while warming up.
    """
    compiled = kwargs.get("compile_scope") is not None
    before = graph_count()
    try:
        runner = Runner(model, method, x, y, **kwargs)
        for _ in range(warmup):
            loss = runner.step()
        if not torch.isfinite(loss.detach().float()).item():
            return None, f"non-finite loss {loss.item()}"
    except Exception as exc:
        return None, describe_failure(exc, compiled)
    runner.graphs = graph_count() - before
    return runner, None


def describe_failure(exc: BaseException, compiled: bool) -> str:
    """One line: what failed, and for a compile failure the user-code line that stopped it."""
    text = str(exc).strip()
    kind = type(exc).__name__
    if compiled and ("Recompile" in kind or "recompile_limit" in text):
        return f"not compilable: needs more than {MAX_GRAPHS} graphs ({kind})"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    key = ("Could not", "Unsupported", "not supported", "Graph break", "graph break")
    summary = lines[0] if lines else ""
    for ln in lines:
        hits = [ln.index(k) for k in key if k in ln]
        if hits:
            summary = ln[min(hits) :]
            break
    if len(summary) > 80:
        summary = summary[:77] + "..."
    where = ""
    if "from user code:" in text:
        frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', text.split("from user code:")[-1])
        if frames:
            path, line, func = frames[-1]
            with contextlib.suppress(ValueError):
                path = Path(path).resolve().relative_to(REPO).as_posix()
            where = f" at {path}:{line} ({func})"
    prefix = "not compilable" if compiled else "failed"
    return f"{prefix}: {kind}{where}: {summary}"
