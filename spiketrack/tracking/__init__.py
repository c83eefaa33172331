"""Online tracking (docs/tracking.md, "How the tracker works").

- :mod:`~spiketrack.tracking.postprocess`: Hann window, box decoding, crop -> image mapping, clipping.
- :mod:`~spiketrack.tracking.asr`: adaptive search region (HDETrack V2).
- :mod:`~spiketrack.tracking.tracker`: :class:`ModelTracker` for the teacher and the student.
- :mod:`~spiketrack.tracking.runner`: :func:`track_dataset`, result files, resume, parallel workers.
- :mod:`~spiketrack.tracking.meter`: the meter protocol, all tracking knows of energy (energy implements it).
- :mod:`~spiketrack.tracking.baseline`: the event-density baseline; :mod:`~spiketrack.tracking.frame`: TrackingFrame.

Submodules are imported on demand (``from spiketrack.tracking.runner import track_dataset``) so the CLI stays fast.
"""
