"""LoRA adapters: which layers they wrap (teacher and student), B = 0 leaves outputs unchanged, removal restores."""

from __future__ import annotations

import pytest
import torch

from spiketrack.config import load_config
from spiketrack.models import build_model
from spiketrack.models.lora import LoRALinear, add_lora, lora_parameters, remove_lora, target_names

SETS = ["model.variant=quickstart", "model.timesteps=1", "data.template_size=32", "data.search_size=64"]


def model_of(kind: str) -> torch.nn.Module:
    """The model, its BN statistics set from one batch (so the untrained student spikes), in eval mode."""
    torch.manual_seed(0)
    model = build_model(load_config(None, [f"model.kind={kind}", *SETS]))
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = 1.0
    with torch.no_grad():
        model.train()(*inputs(model))
    return model.eval()


def inputs(model: torch.nn.Module) -> tuple:
    """Template and search inputs of batch 1 (event bins or an 'events' view)."""
    g = torch.Generator().manual_seed(1)
    if model.input_spec.timesteps:
        return (torch.poisson(torch.full((1, 1, 2, 32, 32), 1.0), generator=g),
                torch.poisson(torch.full((1, 1, 2, 64, 64), 1.0), generator=g))
    return ({"events": torch.rand(1, 2, 32, 32, generator=g)}, {"events": torch.rand(1, 2, 64, 64, generator=g)})


def test_targets_are_attention_and_mlp_linears() -> None:
    student = target_names(model_of("student"))
    assert student and all(n.startswith("backbone.blocks.") and n.endswith(".linear") for n in student)
    assert {n.split(".")[-2] for n in student} == {"q", "k", "v", "proj", "fc1", "fc2"}
    assert not any(n.startswith("memory.") for n in student)  # the memory module keeps its weights
    teacher = target_names(model_of("teacher"))
    assert teacher and {n.rsplit(".", 1)[1] for n in teacher} == {"qkv", "proj", "fc1", "fc2"}
    assert target_names(model_of("teacher"), ["fc1"]) == [n for n in teacher if n.endswith("fc1")]


@pytest.mark.parametrize("kind", ["student", "teacher"])
def test_zero_B_keeps_outputs_and_removal_restores_the_model(kind: str) -> None:
    model = model_of(kind)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    template, search = inputs(model)
    with torch.no_grad():
        ref = model(template, search)
    adapters = add_lora(model, target_names(model), rank=16, alpha=32)
    assert adapters and all(a.scaling == 2.0 for a in adapters)
    assert len(lora_parameters(model)) == 2 * len(adapters)
    with torch.no_grad():
        same = model(template, search)
        torch.testing.assert_close(same["score_map"], ref["score_map"], rtol=0, atol=0)
        torch.testing.assert_close(same["pred_boxes"], ref["pred_boxes"], rtol=0, atol=0)
        for a in adapters:
            a.lora_b.weight.normal_(std=0.5)
        changed = model(template, search)
    assert not torch.allclose(changed["score_map"], ref["score_map"])
    assert remove_lora(model) == len(adapters)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    with torch.no_grad():
        torch.testing.assert_close(model(template, search)["score_map"], ref["score_map"], rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["student", "teacher"])
def test_merged_adapters_give_the_adapted_outputs_and_restore_bit_exactly(kind: str) -> None:
    from spiketrack.models.lora import merge_lora, restore_weights

    model = model_of(kind)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    template, search = inputs(model)
    adapters = add_lora(model, target_names(model), rank=4, alpha=8)
    torch.manual_seed(3)
    with torch.no_grad():
        for a in adapters:
            a.lora_b.weight.normal_(std=0.05)
        adapted = model(template, search)
    saved = merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert set(saved) == set(target_names(model)) and model.state_dict().keys() == before.keys()
    # W' = W + (alpha/r) B A, on one layer by hand
    name = target_names(model)[0]
    a = adapters[0]
    torch.testing.assert_close(model.get_submodule(name).weight,
                               before[f"{name}.weight"] + 2.0 * a.lora_b.weight @ a.lora_a.weight)
    with torch.no_grad():
        merged = model(template, search)
    torch.testing.assert_close(merged["score_map"], adapted["score_map"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(merged["pred_boxes"], adapted["pred_boxes"], rtol=1e-4, atol=1e-5)
    restore_weights(model, saved)
    after = model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)
