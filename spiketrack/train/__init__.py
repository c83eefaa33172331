"""spiketrack.train: pair sampling, tracking losses, the trainer (AMP, DDP, exact resume) and checkpoints.

Import the pieces from their modules (``spiketrack.train.trainer.train``,
``spiketrack.train.checkpoint.load_checkpoint``); this package file imports nothing heavy.
"""
