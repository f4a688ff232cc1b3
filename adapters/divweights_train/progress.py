"""What a training run shows while it runs: a progress bar on a terminal, plain lines elsewhere.

On a terminal, :class:`RunProgress` draws one :mod:`tqdm` bar over the whole
run's optimisation steps: the run's name, the epoch, the running loss and
accuracy (against the noisy labels, over the epoch so far) and tqdm's
estimate of the time left; the one-line summary of every epoch is printed
above it. When standard output is not a terminal (a log file, a pipe, a
notebook) there is no bar, only those lines, each ending with the estimated
time left for the run. ``quiet`` shows nothing.

Reading the running loss and accuracy waits for the device; the bar does
it every :data:`SYNC_EVERY` steps, and not at all when no bar is shown.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO

__all__ = ["SYNC_EVERY", "RunProgress", "format_duration"]

#: Steps between two reads of the running loss and accuracy for the bar.
SYNC_EVERY = 50


def format_duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``.

    Examples
    --------
    >>> format_duration(42.4), format_duration(185), format_duration(3725)
    ('42s', '3m05s', '1h02m')
    """
    s = round(max(seconds, 0.0))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class RunProgress:
    """Progress display of one run (see the module docstring).

    Parameters
    ----------
    label : str
        The run's name, shown on the bar.
    epochs : int
        Epochs of the run.
    show : bool, optional
        Draw the bar; default: when ``stream`` is a terminal and not ``quiet``.
    quiet : bool
        Show nothing (``log``, if given, still receives the lines).
    log : callable, optional
        Receives every line instead of ``stream``.
    stream : file, optional
        Where the bar and the lines go (default :data:`sys.stdout`).

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> p = RunProgress(label="moons/ciw", epochs=2, stream=out)
    >>> p.show  # a StringIO is not a terminal: plain lines
    False
    >>> p.begin(start_step=0, total_steps=6)
    >>> p.start_epoch(0)
    >>> for _ in range(3):
    ...     p.advance(lambda: (0.5, 0.75))
    >>> p.end_epoch("epoch   1/2  loss 0.5000", epoch=1, seconds=2.0)
    >>> out.getvalue()
    'epoch   1/2  loss 0.5000  eta 2s\\n'
    """

    def __init__(
        self,
        *,
        label: str,
        epochs: int,
        show: bool | None = None,
        quiet: bool = False,
        log: Callable[[str], None] | None = None,
        stream: IO[str] | None = None,
    ):
        self.stream = stream if stream is not None else sys.stdout
        self.label = label
        self.epochs = int(epochs)
        self.quiet = quiet
        self.log = log
        if show is None:
            isatty = getattr(self.stream, "isatty", None)
            show = not quiet and callable(isatty) and bool(isatty())
        self.show = bool(show)
        self.bar = None
        self._times: list[float] = []
        self._epoch = 0
        self._since = 0

    def begin(self, *, start_step: int, total_steps: int) -> None:
        """Training starts at step ``start_step`` (a resumed run) and ends at ``total_steps``: draw the bar."""
        if self.show:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=max(int(total_steps), int(start_step)),
                initial=int(start_step),
                desc=self.label,
                unit="step",
                dynamic_ncols=True,
                file=self.stream,
                leave=False,
            )

    def line(self, text: str) -> None:
        """Print one line (above the bar, if any)."""
        if self.log is not None:
            self.log(text)
        elif self.quiet:
            return
        elif self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def start_epoch(self, epoch: int) -> None:
        """Epoch ``epoch`` (0-based) begins."""
        self._epoch = epoch
        self._since = 0
        self._t0 = time.perf_counter()
        if self.bar is not None:
            self.bar.set_postfix_str(f"epoch {epoch + 1}/{self.epochs}")

    def advance(self, stats: Callable[[], tuple[float, float]] | None = None) -> None:
        """One step done; ``stats()`` gives the running ``(loss, accuracy)`` and is called only when shown."""
        if self.bar is None:
            return
        self.bar.update(1)
        self._since += 1
        if stats is not None and self._since % SYNC_EVERY == 0:
            loss, acc = stats()
            self.bar.set_postfix_str(f"epoch {self._epoch + 1}/{self.epochs} loss {loss:.3f} acc {acc:.3f}")

    def end_epoch(self, text: str, *, epoch: int, seconds: float) -> None:
        """Epoch ``epoch`` (1-based) took ``seconds``: print ``text`` and the time left for the run."""
        self._times.append(seconds)
        left = (self.epochs - epoch) * sum(self._times) / len(self._times)
        self.line(f"{text}  eta {format_duration(left)}" if epoch < self.epochs else text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
