"""spiketrack.data."""
