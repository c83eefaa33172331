"""One-step box accuracy of a checkpoint: IoU on training-style crops of a dataset split, no tracking loop.

Usage: ``python tools/eval_one_step.py CHECKPOINT DATASET_ROOT [--split test] [--samples 512] [--seed 123]``.

Each sample is drawn exactly as in training (:class:`spiketrack.train.sampling.PairDataset`: a template frame, a
later search frame, a search crop around the true box with the config's centre and scale jitter), the model
predicts one box per crop, and the IoU with the true box is averaged. Run it on the training split and on a
held-out split: the difference is the generalisation gap, which the tracking scores mix with drift and
re-detection. Also prints the mean and spread of log(predicted / true) width and height (size bias).
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.data import default_collate
from torchvision.ops import box_iou

from spiketrack.config import DatasetSource
from spiketrack.models.checkpoint import load_checkpoint
from spiketrack.train.losses import cxcywh_to_xyxy
from spiketrack.train.sampling import PairDataset
from spiketrack.train.trainer import run_model


def one_step_iou(checkpoint: str, root: str, split: str, samples: int, seed: int, batch: int = 64) -> dict[str, float]:
    """Mean IoU, share of IoU > 0.5 and log size ratios of ``samples`` training-style crops of ``root``/``split``."""
    model, cfg = load_checkpoint(checkpoint)
    cfg.data.datasets = [DatasetSource(root=root, weight=1.0)]
    cfg.train.preload_mb = 0
    dataset = PairDataset(
        cfg,
        inputs=[model.input_spec],
        split=split,
        length=samples,
        seed=seed,
    )
    ious, log_w, log_h = [], [], []
    with torch.no_grad():
        for start in range(0, samples, batch):
            items = default_collate([dataset[i] for i in range(start, min(start + batch, samples))])
            pred = run_model(model, items, cfg.data.num_search)["pred_boxes"].reshape(-1, 4)
            true = items["boxes"].reshape(-1, 4)
            ious.append(box_iou(cxcywh_to_xyxy(pred), cxcywh_to_xyxy(true)).diag())
            log_w.append(torch.log(pred[:, 2] / true[:, 2]))
            log_h.append(torch.log(pred[:, 3] / true[:, 3]))
    iou, lw, lh = torch.cat(ious), torch.cat(log_w), torch.cat(log_h)
    return {
        "iou": float(iou.mean()),
        "iou_above_0.5": float((iou > 0.5).float().mean()),
        "log_w_mean": float(lw.mean()),
        "log_w_std": float(lw.std()),
        "log_h_mean": float(lh.mean()),
        "log_h_std": float(lh.std()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("root", help="dataset folder (sequence files + split lists)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args()
    r = one_step_iou(args.checkpoint, args.root, args.split, args.samples, args.seed)
    print(
        f"{args.checkpoint} on {args.root}:{args.split} ({args.samples} crops): IoU {r['iou']:.3f}, "
        f"IoU>0.5 {r['iou_above_0.5']:.2f}, log w ratio {r['log_w_mean']:+.2f} ± {r['log_w_std']:.2f}, "
        f"log h ratio {r['log_h_mean']:+.2f} ± {r['log_h_std']:.2f}"
    )


if __name__ == "__main__":
    main()
