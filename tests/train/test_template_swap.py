"""Template-swap negatives (``train.loss.template_swap``): the batch rolled by one, the known focal value, training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn
from trainsynth import tiny_config

from spiketrack.data.inputs import InputSpec
from spiketrack.train.losses import swap_templates, template_swap_loss
from spiketrack.train.trainer import run_model, train


def _batch(sequences: list[str], n: int = 3) -> dict:
    b = len(sequences)
    # template i is filled with the value i; search frame j of sample i with 10 * i + j
    template = torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1, 1).expand(b, 1, 2, 4, 4).clone()
    search = (10 * torch.arange(b).view(b, 1) + torch.arange(n).view(1, n)).float()
    return {
        "template_bins": template,  # [B, T_t, 2, St, St]
        "search_bins": search.view(b, n, 1, 1, 1, 1).expand(b, n, 1, 2, 8, 8).clone(),  # [B, n, T, 2, Ss, Ss]
        "heatmap": torch.zeros(b, n, 1, 2, 2),
        "sequence": sequences,
    }


def test_swap_rolls_the_templates_keeps_the_first_search_frame_and_skips_same_sequence_pairs() -> None:
    swapped, keep = swap_templates(_batch(["a.h5", "a.h5", "b.h5"]))
    # sample i gets the template of sample i - 1 (sample 0 that of the last one)
    assert swapped["template_bins"][:, 0, 0, 0, 0].tolist() == [2.0, 0.0, 1.0]
    assert swapped["search_bins"].shape[1] == 1
    assert swapped["search_bins"][:, 0, 0, 0, 0, 0].tolist() == [0.0, 10.0, 20.0]
    # sample 1's foreign template comes from its own sequence (a.h5): no swap for it
    assert keep.tolist() == [True, False, True]
    assert "heatmap" not in swapped and "sequence" not in swapped


def test_nothing_to_swap_in_a_single_sequence_batch_or_a_batch_of_one() -> None:
    assert swap_templates(_batch(["a.h5", "a.h5"])) is None
    assert swap_templates(_batch(["a.h5"])) is None


class _TemplateScore(nn.Module):
    """Score map [N, 1, 2, 2] filled with template value / 4: reads only its template."""

    input_spec = InputSpec.event_bins(1)

    def forward(self, template: torch.Tensor, search: torch.Tensor, return_features: bool = False) -> dict:
        assert search.shape[1] == template.shape[1]
        p = template[0, :, 0, 0, 0] / 4  # [N]
        return {"score_map": p.view(-1, 1, 1, 1).expand(-1, 1, 2, 2)}


def test_swap_loss_is_the_focal_negative_term_of_the_foreign_templates_score() -> None:
    model = _TemplateScore()
    loss = template_swap_loss(lambda b, n: run_model(model, b, n), _batch(["a.h5", "a.h5", "b.h5"]))
    # kept samples 0 and 2 see templates 2 and 1: p = 0.5 and 0.25 on 4 cells each; CenterNet's negative term
    # p^2 log(1 - p) per cell, averaged over the 2 samples
    expected = -4 * (0.5**2 * math.log(0.5) + 0.25**2 * math.log(0.75)) / 2
    assert loss is not None and abs(float(loss) - expected) < 1e-5


def test_student_and_teacher_train_with_the_swap_term(square_dataset: Path, tmp_path: Path) -> None:
    for kind in ("student", "teacher"):
        cfg = tiny_config(square_dataset, kind, **{"train.loss.template_swap.enabled": True, "train.batch_size": 3,
                                                    "train.steps_per_epoch": 2})
        result = train(cfg, tmp_path / kind, progress=False)
        history = [json.loads(line) for line in (result.run_dir / "history.jsonl").read_text().splitlines()]
        assert history and all(math.isfinite(h["template_swap"]) for h in history)
        assert history[-1]["template_swap"] > 0  # seeded draws: the batches mix the three sequences
