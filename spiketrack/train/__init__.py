"""spiketrack.train: pair sampling, tracking losses, the trainer (AMP, DDP, exact resume) and checkpoint writing.

Import the pieces from their modules (``spiketrack.train.trainer.train``,
``spiketrack.train.checkpoint.CheckpointManager``); a model is loaded from a checkpoint with
``spiketrack.models.checkpoint.load_checkpoint``. This package file imports nothing heavy.
"""
