"""Training side: the level-scaled model, data, the multi-level trainer, checkpoints and evaluation."""
