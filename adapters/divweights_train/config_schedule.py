"""The learning-rate schedule and the burn-in / annealing lengths of a training run.

:class:`_Schedule` holds the learning-rate methods of
:class:`~divweights_train.config.TrainConfig`; :func:`schedule_steps` and
:func:`anneal_schedule` turn its burn-in and annealing options into steps.
Re-exported by :mod:`divweights_train.config`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config_ranges import MAX_COUNT

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = ["anneal_schedule", "schedule_steps"]


class _Schedule:
    """The learning-rate methods of :class:`~divweights_train.config.TrainConfig`."""

    def lr_at_epoch(self, epoch: int) -> float:
        """Learning rate during ``epoch`` (0-based) under step decay.

        Examples
        --------
        >>> from divweights_train.config import TrainConfig
        >>> cfg = TrainConfig(dataset="two-moons", lr=0.1, lr_milestones=(2, 4), epochs=6)
        >>> [round(cfg.lr_at_epoch(e), 4) for e in range(6)]
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
        """
        if self.lr is None or self.lr_milestones is None:
            raise ValueError("call resolved() first")
        drops = sum(1 for m in self.lr_milestones if epoch >= m)
        return float(self.lr) * float(self.lr_decay) ** drops

    def lr_at_step(self, epoch: int, step: int) -> float:
        """Learning rate of step ``step`` (0-based, global) in ``epoch`` under step decay, before any warm-up.

        With ``lr_milestone_steps`` the rate drops after each milestone step
        ``m``, as ``tf.keras``'s ``PiecewiseConstantDecay`` (the published
        schedule): steps ``0..m`` use the higher rate and step ``m + 1`` the
        lower. Otherwise it is :meth:`lr_at_epoch`.

        Examples
        --------
        >>> from divweights_train.config import TrainConfig
        >>> cfg = TrainConfig(dataset="cifar10", lr=0.1, lr_milestone_steps=(2, 4)).resolved()
        >>> [round(cfg.lr_at_step(0, s), 4) for s in range(6)]
        [0.1, 0.1, 0.1, 0.01, 0.01, 0.001]
        """
        lr = self.lr_at_epoch(epoch)
        if self.lr_milestone_steps:
            drops = sum(1 for m in self.lr_milestone_steps if step > m)
            lr *= float(self.lr_decay) ** drops
        return lr

    def lr_at(self, epoch: int, step: int, steps_per_epoch: int) -> float:
        """Learning rate of optimisation step ``step`` (0-based, global) in ``epoch``.

        Step decay (:meth:`lr_at_step`) times a linear warm-up from
        ``1/warmup_steps`` to 1 over the first ``warmup_epochs`` epochs.

        Examples
        --------
        >>> from divweights_train.config import TrainConfig
        >>> cfg = TrainConfig(dataset="two-moons", lr=0.1, lr_milestones=(), warmup_epochs=1.0)
        >>> [round(cfg.lr_at(0, s, 4), 3) for s in range(5)]
        [0.025, 0.05, 0.075, 0.1, 0.1]
        >>> TrainConfig(dataset="two-moons", lr=0.1, lr_milestones=(), warmup_epochs=0.1).lr_at(0, 0, 4)
        0.1
        """
        lr = self.lr_at_step(epoch, step)
        warm = self.warmup_epochs * steps_per_epoch
        if warm > 0 and step < warm:
            lr *= min(1.0, (step + 1) / warm)  # a warm-up shorter than one step never raises the lr
        return lr

    def strength(self) -> dict[str, float | str]:
        """The instance strength as a keyword dict (``{'delta': 0.5}``, ``{'delta': 'auto'}`` ...)."""
        for name in ("delta", "temperature", "lam"):
            v = getattr(self, name)
            if v is not None:
                return {name: v if v == "auto" else float(v)}
        raise ValueError("no instance strength set; call resolved() first")


def schedule_steps(config: TrainConfig, steps_per_epoch: int) -> tuple[int, int]:
    """Burn-in and annealing lengths in optimisation steps.

    Explicit ``burnin_steps``/``anneal_steps`` win; otherwise
    ``round(epochs * steps_per_epoch)`` from ``burnin_epochs``/``anneal_epochs``
    (at most :data:`MAX_COUNT`).

    Examples
    --------
    >>> from divweights_train.config import TrainConfig
    >>> cfg = TrainConfig(dataset="two-moons", burnin_epochs=1.5, anneal_steps=7)
    >>> schedule_steps(cfg, 10)
    (15, 7)
    """
    cfg = config if config.burnin_epochs is not None and config.anneal_epochs is not None else config.resolved()
    burnin = cfg.burnin_steps
    if burnin is None:
        burnin = min(MAX_COUNT, round(cfg.burnin_epochs * steps_per_epoch))
    anneal = cfg.anneal_steps
    if anneal is None:
        anneal = min(MAX_COUNT, round(cfg.anneal_epochs * steps_per_epoch))
    return int(burnin), int(anneal)


def anneal_schedule(config: TrainConfig, steps_per_epoch: int) -> tuple[int, int, float]:
    """Burn-in steps, annealing steps and start factor of the backends' schedule.

    :func:`schedule_steps` and ``anneal_start_factor``; under the paper
    protocol the annealing line is the published one, one step ahead
    (:func:`divweights_train.protocol.published_anneal`).

    Examples
    --------
    >>> from divweights_train.config import TrainConfig
    >>> anneal_schedule(TrainConfig(dataset="cifar10", protocol="paper"), 1000)
    (4000, 2999, 9.997)
    >>> anneal_schedule(TrainConfig(dataset="cifar10", burnin_steps=4000, anneal_steps=3000), 1000)
    (4000, 3000, 10.0)
    """
    cfg = config.resolved()
    burnin, anneal = schedule_steps(cfg, steps_per_epoch)
    factor = float(cfg.anneal_start_factor)
    if cfg.protocol == "paper":
        from .protocol import published_anneal

        anneal, factor = published_anneal(anneal, factor)
    return burnin, anneal, factor
