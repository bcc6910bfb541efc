"""Training and evaluation of one study run (see ``engine.train_run``)."""

from wconv.train.engine import EXIT_REQUEUE, EarlyStopping, Interrupted, evaluate, train_run
from wconv.train.rehearsal import rehearse_run

__all__ = ["EXIT_REQUEUE", "EarlyStopping", "Interrupted", "evaluate", "rehearse_run", "train_run"]
