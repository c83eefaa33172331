"""spiketrack: energy-efficient single-object tracking with event cameras and spiking neural networks."""

__version__ = "0.1.0"
