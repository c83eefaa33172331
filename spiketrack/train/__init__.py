"""spiketrack.train."""
