"""Training and evaluation of one study run (see ``engine.train_run``)."""

from wconv.train.engine import EarlyStopping, Interrupted, evaluate, train_run
from wconv.train.rehearsal import rehearse_run
from wconv.vocabulary import EXIT_REQUEUE

__all__ = ["EXIT_REQUEUE", "EarlyStopping", "Interrupted", "evaluate", "rehearse_run", "train_run"]
