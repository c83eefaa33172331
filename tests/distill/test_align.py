"""Token-layout mapping between teacher and student."""

from __future__ import annotations

import torch

from spiketrack.distill.align import cosine_similarity_matrix, pool_similarity, pool_tokens, tokens_to_grid


def test_tokens_to_grid_layouts() -> None:
    x = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)  # [B, N=2x2, C]
    g = tokens_to_grid(x)
    assert g.shape == (2, 3, 2, 2)
    assert g[0, :, 0, 1].tolist() == x[0, 1].tolist()  # token 1 = row 0, column 1
    assert torch.equal(tokens_to_grid(torch.stack([x, x + 2])), tokens_to_grid(x + 1))  # [T, B, N, C]: mean over T


def test_pool_similarity_equals_similarity_of_pooled_tokens_for_dot_products() -> None:
    torch.manual_seed(0)
    tok = torch.randn(1, 16, 5)
    sim = tok @ tok.transpose(1, 2)  # bilinear -> pooling commutes
    pooled = pool_tokens(tok, 2)
    assert torch.allclose(pool_similarity(sim, 2), pooled @ pooled.transpose(1, 2), atol=1e-5)


def test_pool_similarity_sum_keeps_attention_rows_normalised() -> None:
    att = torch.softmax(torch.randn(3, 16, 16), dim=-1)
    out = pool_similarity(att, 2, key_reduce="sum")
    assert torch.allclose(out.sum(-1), torch.ones(3, 4), atol=1e-5)


def test_cosine_similarity_diagonal_is_one() -> None:
    s = cosine_similarity_matrix(torch.randn(2, 9, 4))
    assert torch.allclose(torch.diagonal(s, dim1=1, dim2=2), torch.ones(2, 9), atol=1e-5)
