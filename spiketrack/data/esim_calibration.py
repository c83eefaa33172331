"""Calibrate the ESIM contrast threshold on a real DAVIS recording (APS frames + DVS events of one sensor).

Protocol (what "matches" means, used by the test and docs/data.md, "Calibration on a real DAVIS346 recording"):

1. Decode the AEDAT4 file: grayscale APS frames with their timestamps (``frame.t``, mid-exposure) and the
   polarity events.
2. Run :func:`spiketrack.data.esim.simulate` on the APS frames (uint8 -> intensity in [0, 1]) with the given
   sensor config; the simulated events cover ``(t_first_frame, t_last_frame]``.
3. Take the real events of the same interval ``(t_first_frame, t_last_frame]``.
4. Compare: the total counts (ratio simulated / real) and the Pearson correlation over all pixels of the two
   per-pixel event-count maps (both polarities summed), optionally after a Gaussian blur of ``sigma`` px applied
   to both maps (``sigma = 0``: raw maps, the headline figure).
5. Sweep the nominal threshold C (ON = OFF) and keep the C whose count ratio is closest to 1 in log scale.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from spiketrack.data.esim import EsimConfig, simulate
from spiketrack.data.events import EventArray
from spiketrack.errors import DataFormatError


@dataclass(frozen=True)
class DavisRecording:
    """APS frames (uint8 [F, H, W]) with timestamps (int64 [F] µs) and the DVS events of one DAVIS recording."""

    frames: np.ndarray
    frame_times: np.ndarray
    events: EventArray
    width: int
    height: int


@dataclass(frozen=True)
class CalibrationPoint:
    """Result of one simulated run against the real events."""

    contrast: float
    sim_count: int
    real_count: int
    correlation: float  # Pearson correlation of the count maps (blurred by `sigma` px)
    sigma: float

    @property
    def count_ratio(self) -> float:
        return self.sim_count / max(self.real_count, 1)


def load_davis_aedat4(path: str | Path) -> DavisRecording:
    """Read APS frames and polarity events of an AEDAT4 file with the ``aedat`` package."""
    path = Path(path)
    try:
        import aedat
    except ImportError as exc:  # declared dependency; kept optional at import time of the package
        raise DataFormatError(path, None, "reading AEDAT4 needs the `aedat` package") from exc
    if not path.is_file():
        raise DataFormatError(path, None, "file not found")
    frames, times, parts = [], [], []
    width = height = 0
    try:
        decoder = aedat.Decoder(str(path))
        for stream in decoder.id_to_stream().values():
            if stream.get("type") == "events":
                width, height = int(stream["width"]), int(stream["height"])
        for packet in decoder:
            if "events" in packet:
                parts.append(packet["events"])
            elif "frame" in packet:
                frame = packet["frame"]
                frames.append(np.asarray(frame["pixels"], dtype=np.uint8))
                times.append(int(frame["t"]))
    except Exception as exc:  # the decoder raises plain exceptions on corrupt containers
        raise DataFormatError(path, None, f"cannot decode AEDAT4: {exc}") from exc
    if not frames or not parts:
        raise DataFormatError(path, "frame/events", "the calibration needs both APS frames and polarity events")
    raw = np.concatenate(parts)
    events = EventArray.from_arrays(raw["t"].astype(np.int64), raw["x"], raw["y"], raw["on"].astype(np.uint8))
    if np.any(np.diff(events.t) < 0):
        events = events.sorted_by_time()
    return DavisRecording(np.stack(frames), np.asarray(times, dtype=np.int64), events, width, height)


def count_map(events: EventArray, height: int, width: int) -> np.ndarray:
    """Events per pixel (both polarities), float64 [H, W]."""
    flat = events.y.astype(np.int64) * width + events.x.astype(np.int64)
    return np.bincount(flat, minlength=height * width).astype(np.float64).reshape(height, width)


def count_map_correlation(a: np.ndarray, b: np.ndarray, sigma: float = 0.0) -> float:
    """Pearson correlation over pixels of two count maps, after a Gaussian blur of ``sigma`` px when > 0."""
    if sigma > 0:
        from scipy.ndimage import gaussian_filter

        a, b = gaussian_filter(a, sigma), gaussian_filter(b, sigma)
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def evaluate_contrast(
    rec: DavisRecording, contrast: float, config: EsimConfig | None = None, seed: int = 0, sigma: float = 0.0
) -> CalibrationPoint:
    """Simulate the recording's APS frames at threshold ``contrast`` and compare with its real events."""
    cfg = (config or EsimConfig()).with_contrast(contrast)
    sim = simulate(rec.frames, rec.frame_times, cfg, seed)
    real = rec.events.between(int(rec.frame_times[0]), int(rec.frame_times[-1]))
    corr = count_map_correlation(
        count_map(sim, rec.height, rec.width), count_map(real, rec.height, rec.width), sigma
    )
    return CalibrationPoint(float(contrast), len(sim), len(real), corr, sigma)


def sweep_contrast(
    rec: DavisRecording,
    contrasts: np.ndarray,
    config: EsimConfig | None = None,
    seed: int = 0,
    sigma: float = 0.0,
) -> list[CalibrationPoint]:
    """One :class:`CalibrationPoint` per threshold."""
    return [evaluate_contrast(rec, float(c), config, seed, sigma) for c in contrasts]


def best_contrast(points: list[CalibrationPoint]) -> CalibrationPoint:
    """The point whose simulated count is closest to the real one (in log ratio)."""
    return min(points, key=lambda p: abs(math.log(max(p.count_ratio, 1e-9))))


def main(argv: list[str] | None = None) -> int:
    """``python -m spiketrack.data.esim_calibration FILE.aedat4``: print the sweep table and the best C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--min", type=float, default=0.10)
    parser.add_argument("--max", type=float, default=0.50)
    parser.add_argument("--step", type=float, default=0.005)
    parser.add_argument("--sigma", type=float, default=0.0, help="Gaussian blur (px) of both count maps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-eps", type=float, default=EsimConfig().log_eps)
    args = parser.parse_args(argv)
    rec = load_davis_aedat4(args.path)
    contrasts = np.round(np.arange(args.min, args.max + 1e-9, args.step), 6)
    config = replace(EsimConfig(), log_eps=args.log_eps)
    points = sweep_contrast(rec, contrasts, config, args.seed, args.sigma)
    print(f"{'C':>7} {'sim':>8} {'real':>8} {'ratio':>6} {'corr':>6}")
    for p in points:
        print(f"{p.contrast:7.3f} {p.sim_count:8d} {p.real_count:8d} {p.count_ratio:6.3f} {p.correlation:6.3f}")
    best = best_contrast(points)
    print(f"best C = {best.contrast:.3f}: ratio {best.count_ratio:.3f}, correlation {best.correlation:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
