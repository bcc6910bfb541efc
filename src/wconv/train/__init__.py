"""Training and evaluation of one study run (see ``engine.train_run``)."""

from wconv.train.engine import EXIT_REQUEUE, EarlyStopping, Interrupted, evaluate, train_run

__all__ = ["EXIT_REQUEUE", "EarlyStopping", "Interrupted", "evaluate", "train_run"]
