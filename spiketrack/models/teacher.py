"""ANN teacher: an OSTrack-style one-stream ViT tracker over one or two input views.

Template and search crops are cut into 16x16 patches, embedded, given their own position embeddings
and processed jointly by timm ViT ``Block``s (one-stream joint feature learning and relation modelling,
OSTrack, Ye et al., ECCV 2022). With two views (``rgb+events`` as in the multi-modal teachers of
HDETrack/CEUTrack, or ``events+voxel``) each view gets its own patch embedding and a learned modality
embedding; the token streams are concatenated into one sequence, and the search tokens of the two views
are fused (concatenation + linear projection) before the center head.

Token order inside the sequence: for each view in ``streams`` order, its template tokens then its
search tokens. Per-layer features and attention maps are computed only when asked for.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn

from spiketrack.data.inputs import InputSpec
from spiketrack.errors import CheckpointError, ConfigError
from spiketrack.models import wants
from spiketrack.models.correlation import (
    CENTRE_SHARE,
    XCORR_DEFAULTS,
    InputNcc,
    TemplateCorrelation,
    centre_kernel,
    check_head_stride,
    check_share,
    input_score_prior,
    kernel_normaliser,
    normalise_kernel,
    template_kernel,
    to_head_grid,
)
from spiketrack.models.heads import CenterHead
from spiketrack.models.torch_files import load_torch_file

log = logging.getLogger(__name__)

PATCH = 16  # ViT-B/16 patch size (Dosovitskiy et al., ICLR 2021), used by OSTrack

# Named variants of the family (timm ViT sizes; base = ViT-B/16 as in OSTrack-256, ~92.5 M params with head).
# stem: 'patch' = 16x16 linear patch embedding (ViT; what pretrained checkpoints provide); 'conv' = four
# 3x3 stride-2 conv-BN-ReLU layers and a 1x1 projection (Xiao et al., "Early Convolutions Help Transformers
# See Better", NeurIPS 2021), which a ViT trained from scratch on little data learns much faster.
VARIANTS: dict[str, dict[str, Any]] = {
    "quickstart": dict(dim=128, depth=4, heads=4, mlp_ratio=2.0, head_channels=64, drop_path=0.0, stem="conv"),
    "tiny": dict(dim=192, depth=12, heads=3, mlp_ratio=4.0, head_channels=128, drop_path=0.1, stem="patch"),
    "small": dict(dim=384, depth=12, heads=6, mlp_ratio=4.0, head_channels=256, drop_path=0.1, stem="patch"),
    "base": dict(dim=768, depth=12, heads=12, mlp_ratio=4.0, head_channels=256, drop_path=0.1, stem="patch"),
}
STEMS = ("patch", "conv")
# state-dict prefixes of the parts a pretrained ViT backbone cannot provide
HEAD_PREFIXES = ("head.", "fuse.", "correlation_norm.", "kernel_norm.", "shallow_", "input_ncc")
# XCORR_DEFAULTS (xcorr, xcorr_kernel, xcorr_kernel_norm) are variant fields too: with xcorr the center head sees
# the depthwise correlation of the search features with the template's (a k x k kernel pooled from the final template tokens,
# :mod:`spiketrack.models.correlation`) instead of the search features themselves, so a box needs a template
# match (SiamRPN++ head on an OSTrack backbone). Off by default (OSTrack).

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision ImageNet statistics (timm ViT pretraining)
IMAGENET_STD = (0.229, 0.224, 0.225)


class InputNorm(nn.Module):
    """The model's own input normalisation of one view.

    rgb [B, 3, H, W] in [0, 1] -> ImageNet-standardised; events (polarity counts) -> log1p(counts);
    voxel (signed) -> sign(x) * log1p(|x|). Log compression keeps dense-texture windows and sparse
    windows in one range without per-dataset statistics.
    """

    def __init__(self, view: str) -> None:
        super().__init__()
        self.view = view
        if view == "rgb":
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, H, W] -> [B, C, H, W]."""
        if self.view == "rgb":
            return (x - self.mean) / self.std
        return torch.sign(x) * torch.log1p(x.abs())


class PatchEmbed(nn.Module):
    """16x16 non-overlapping patch embedding (conv with stride 16)."""

    def __init__(self, in_chans: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, PATCH, stride=PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, H, W] -> tokens [B, (H/16)*(W/16), dim]."""
        return self.proj(x).flatten(2).transpose(1, 2)


class ConvStem(nn.Module):
    """Convolutional stem to stride 16: 4 x (conv3x3 stride 2 -> BN -> ReLU), widths dim/8 .. dim, then a
    1x1 projection (Xiao et al., NeurIPS 2021). Its stride-8 features (``dim / 2`` channels) are the shallow
    correlation level (:mod:`spiketrack.models.correlation`)."""

    SHALLOW_STRIDE = 8

    def __init__(self, in_chans: int, dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_chans
        for w in (max(dim // 8, 1), max(dim // 4, 1), max(dim // 2, 1), dim):
            layers += [nn.Conv2d(c, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c = w
        layers.append(nn.Conv2d(dim, dim, 1))
        self.proj = nn.Sequential(*layers)
        self.shallow_channels = max(dim // 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, H, W] -> tokens [B, (H/16)*(W/16), dim]."""
        return self.proj(x).flatten(2).transpose(1, 2)

    def forward_shallow(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [B, C, H, W] -> tokens [B, (H/16)*(W/16), dim] and the stride-8 features [B, dim/2, H/8, W/8]."""
        shallow = self.proj[:9](x)  # three conv-BN-ReLU stages: stride 8
        return self.proj[9:](shallow).flatten(2).transpose(1, 2), shallow


def attention_map(block: Block, x: torch.Tensor) -> torch.Tensor:
    """Softmax attention probabilities of ``block`` on input tokens x [B, N, C] -> [B, heads, N, N].

    timm's ``Attention`` uses fused scaled-dot-product attention and never materialises the map, so it is
    recomputed here from the block's own weights (only when distillation asks for it).
    """
    attn = block.attn
    b, n, _ = x.shape
    qkv = attn.qkv(block.norm1(x)).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, _ = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    return ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)


@dataclass
class _Embedded:
    """One view's tokens and, where the variant has them, its shallow-level response and input-level NCC map."""

    tokens: torch.Tensor
    shallow: torch.Tensor | None = None
    level0: torch.Tensor | None = None


class ViTTeacher(nn.Module):
    """One-stream ViT tracker (teacher). See the module docstring for the token layout.

    Call protocol (shared with the student, see :mod:`spiketrack.models`): ``encode_template(template) -> state``
    (the template views themselves: a one-stream model relates template and search in every layer, so nothing
    can be computed ahead), ``track(search, state)``, ``forward(template, search)``.
    """

    encodes_template = False  # encode_template runs no layer (only keeps the inputs)

    def __init__(
        self,
        *,
        dim: int,
        depth: int,
        heads: int,
        mlp_ratio: float,
        head_channels: int,
        drop_path: float,
        inputs: InputSpec,
        template_size: int,
        search_size: int,
        stem: str = "patch",
        xcorr: bool = False,
        xcorr_kernel: int = 3,
        xcorr_kernel_norm: bool = False,
        xcorr_shallow: bool = False,
        xcorr_shallow_kernel: int = 3,
        xcorr_shallow_share: float = CENTRE_SHARE,
        xcorr_input: bool = False,
        xcorr_input_stride: int = 4,
        xcorr_input_share: float = 0.75,
        xcorr_input_prior: float = 0.0,
        head_stride: int = 16,
    ) -> None:
        super().__init__()
        if stem not in STEMS:
            raise ConfigError(f"key 'model.overrides.stem': expected one of {list(STEMS)}, got {stem!r}")
        self.stem = stem
        for size, key in ((template_size, "data.template_size"), (search_size, "data.search_size")):
            if size % PATCH:
                raise ConfigError(f"key '{key}': the teacher needs a multiple of {PATCH}, got {size}")
        self.input_spec = inputs
        streams = self.streams = inputs.views
        in_chans = inputs.channels
        self.dim = dim
        self.template_grid = template_size // PATCH
        self.search_grid = search_size // PATCH
        self.num_z = self.template_grid**2
        self.num_x = self.search_grid**2
        self.input_norm = nn.ModuleDict({s: InputNorm(s) for s in streams})
        embed = PatchEmbed if stem == "patch" else ConvStem
        self.patch_embed = nn.ModuleDict({s: embed(in_chans[s], dim) for s in streams})
        self.pos_embed_z = nn.Parameter(torch.zeros(1, self.num_z, dim))
        self.pos_embed_x = nn.Parameter(torch.zeros(1, self.num_x, dim))
        self.modality_embed = nn.Parameter(torch.zeros(len(streams), 1, dim)) if len(streams) > 1 else None
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]  # stochastic depth, linear rule
        self.blocks = nn.ModuleList(
            Block(dim, heads, mlp_ratio=mlp_ratio, qkv_bias=True, drop_path=r) for r in rates
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fuse = nn.Linear(dim * len(streams), dim) if len(streams) > 1 else None
        self.correlation = TemplateCorrelation(dim, xcorr_kernel) if xcorr else None
        self.correlation_norm = nn.BatchNorm2d(dim) if xcorr else None  # response scale grows with dim and k*k
        self.kernel_norm = kernel_normaliser(dim, xcorr and xcorr_kernel_norm)
        # shallow level: every view's stride-8 stem features correlated with its template's centre (appearance)
        self.shallow_correlation: nn.ModuleDict | None = None
        shallow_channels = 0
        if xcorr_shallow:
            if stem != "conv" or not xcorr:
                raise ConfigError("key 'model.overrides.xcorr_shallow': needs xcorr: true and the conv stem "
                                  f"(stem: conv), got xcorr {xcorr} and stem {stem!r}")
            width = self.patch_embed[streams[0]].shallow_channels
            self.shallow_correlation = nn.ModuleDict({s: TemplateCorrelation(width, xcorr_shallow_kernel) for s in streams})
            shallow_channels = width * len(streams)
            self.shallow_norm = nn.BatchNorm2d(shallow_channels)
        self.shallow_share = check_share(xcorr_shallow_share, "xcorr_shallow_share")
        # input level: every view's NCC with its template's centre (not learned), best and mean match per head cell
        self.input_ncc: nn.ModuleDict | None = None
        input_channels = 0
        if xcorr_input:
            if not xcorr:
                raise ConfigError("key 'model.overrides.xcorr_input': needs xcorr: true")
            self.input_ncc = nn.ModuleDict(
                {s: InputNcc(in_chans[s], template_size, xcorr_input_stride, xcorr_input_share) for s in streams})
            input_channels = 2 * len(streams)
            self.input_ncc_norm = nn.BatchNorm2d(input_channels)
        self.input_prior = input_score_prior(xcorr_input, xcorr_input_prior)
        # the head's grid: the backbone's stride 16, or stride 8 (deep levels repeated, the shallow level at its own
        # resolution, the input level's best/mean match per stride-8 cell): a finer score map for finer boxes
        self.output_stride = check_head_stride(head_stride, xcorr_shallow or xcorr_input)
        self.head_grid = search_size // self.output_stride
        self.correlation_channels = dim + shallow_channels + input_channels  # the head's input (correlation KD)
        self.head = CenterHead(self.correlation_channels, head_channels)
        self.feature_info = [dict(num_chs=dim, module=f"blocks.{i}") for i in range(depth)]
        nn.init.trunc_normal_(self.pos_embed_z, std=0.02)
        nn.init.trunc_normal_(self.pos_embed_x, std=0.02)
        if self.modality_embed is not None:
            nn.init.trunc_normal_(self.modality_embed, std=0.02)
        self.apply(_init_linear)

    # ------------------------------------------------------------------ components
    def backbone_keys(self) -> list[str]:
        """State-dict keys that a pretrained ViT can provide (everything but head, fusion, modality embeds)."""
        return [
            k
            for k in self.state_dict()
            if not k.startswith(HEAD_PREFIXES) and k != "modality_embed"
        ]

    def _embed(self, view: str, template: torch.Tensor, search: torch.Tensor) -> _Embedded:
        """One view's template + search tokens [B, Nz + Nx, dim], with the shallow level its response [B, dim/2, Hs/8,
        Ws/8] (search stride-8 features correlated with the normalised template centre), with the input level its NCC
        map [B, 1, Hs/stride, Ws/stride]."""
        embed, z_in, x_in = self.patch_embed[view], self.input_norm[view](template), self.input_norm[view](search)
        level0 = None
        if self.input_ncc is not None:
            ncc = self.input_ncc[view]
            level0 = ncc(x_in, ncc.template_kernel(z_in))
        shallow = None
        if self.shallow_correlation is not None:
            (z, zs), (x, xs) = embed.forward_shallow(z_in), embed.forward_shallow(x_in)
            corr = self.shallow_correlation[view]
            shallow = corr(xs, normalise_kernel(centre_kernel(zs, corr.kernel_size[0], self.shallow_share)))
        else:
            z, x = embed(z_in), embed(x_in)
        tokens = torch.cat([z + self.pos_embed_z, x + self.pos_embed_x], dim=1)
        if self.modality_embed is not None:
            tokens = tokens + self.modality_embed[self.streams.index(view)]
        return _Embedded(tokens, shallow, level0)

    def _template_slice(self, stream: int) -> slice:
        start = stream * (self.num_z + self.num_x)
        return slice(start, start + self.num_z)

    def _fused_map(self, tokens: torch.Tensor, part: Any, grid: int) -> torch.Tensor:
        """Final tokens [B, N, C] -> one part's (``part(stream)`` slices) tokens of every view, fused -> [B, C, g, g]."""
        x = torch.cat([tokens[:, part(i)] for i in range(len(self.streams))], dim=2)
        if self.fuse is not None:
            x = self.fuse(x)
        return x.transpose(1, 2).reshape(x.shape[0], self.dim, grid, grid)

    def _search_slice(self, stream: int) -> slice:
        start = stream * (self.num_z + self.num_x) + self.num_z
        return slice(start, start + self.num_x)

    def encode_template(self, template: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """template: view -> [B, C, Ht, Wt] -> the template state (the same views; see the class docstring)."""
        return template

    def forward(
        self,
        template: dict[str, torch.Tensor],
        search: dict[str, torch.Tensor],
        return_features: bool | Collection[str] = False,
    ) -> dict[str, Any]:
        """template: view -> [B, C, Ht, Wt]; search: view -> [B, C, Hs, Ws] -> outputs of :meth:`track`."""
        return self.track(search, self.encode_template(template), return_features)

    def track(
        self,
        search: dict[str, torch.Tensor],
        template: dict[str, torch.Tensor],
        return_features: bool | Collection[str] = False,
    ) -> dict[str, Any]:
        """search: view -> [B, C, Hs, Ws]; template: the state of :meth:`encode_template` (view -> [B, C, Ht, Wt]).

        Returns score_map [B, 1, Hf, Wf], size_map [B, 2, Hf, Wf], offset_map [B, 2, Hf, Wf],
        pred_boxes [B, 4]; with ``return_features`` also 'features' (per layer, search tokens [B, Nx, C]
        of the primary view, 'events' when present) and 'attentions' (per layer, search->search block of
        the primary view's attention probabilities [B, heads, Nx, Nx]) and, with xcorr, 'correlation' (the
        head's input, the normalised template-search correlation [B, Hf*Wf, C]); a collection of names returns
        only those (:func:`spiketrack.models.wants`).
        """
        for view in self.streams:
            if view not in template or view not in search:
                raise ConfigError(
                    f"key 'model.modalities': the teacher expects inputs {list(self.streams)}, "
                    f"got template {sorted(template)} and search {sorted(search)}"
                )
        embedded = [self._embed(v, template[v], search[v]) for v in self.streams]
        tokens = torch.cat([e.tokens for e in embedded], dim=1)
        primary = self._search_slice(self.streams.index("events") if "events" in self.streams else 0)
        want_features, want_attentions = wants(return_features, "features"), wants(return_features, "attentions")
        features: list[torch.Tensor] = []
        attentions: list[torch.Tensor] = []
        for block in self.blocks:
            if want_attentions:
                attentions.append(attention_map(block, tokens)[:, :, primary, primary])
            tokens = block(tokens)
            if want_features:
                features.append(tokens[:, primary])
        tokens = self.norm(tokens)
        x = self._fused_map(tokens, self._search_slice, self.search_grid)
        if self.correlation is not None:
            kernel = self.kernel_norm(template_kernel(
                self._fused_map(tokens, self._template_slice, self.template_grid), self.correlation.kernel_size[0]))
            x = self.correlation_norm(self.correlation(x, kernel))
        grid = (self.head_grid, self.head_grid)
        x = to_head_grid(x, grid)
        if self.shallow_correlation is not None:  # appearance level, on the head's grid
            shallow = self.shallow_norm(torch.cat([e.shallow for e in embedded], dim=1))
            x = torch.cat([x, to_head_grid(shallow, grid)], dim=1)
        prior = None
        if self.input_ncc is not None:
            level0 = torch.cat([InputNcc.to_grid(e.level0, grid) for e in embedded], dim=1)
            x = torch.cat([x, self.input_ncc_norm(level0)], dim=1)
            if self.input_prior is not None:  # the views' best match per cell, on the score logits
                prior = self.input_prior(level0[:, 0::2].mean(dim=1, keepdim=True))
        out: dict[str, Any] = self.head(x, prior)
        if want_features:
            out["features"] = features
        if want_attentions:
            out["attentions"] = attentions
        if self.correlation is not None and wants(return_features, "correlation"):
            out["correlation"] = x.flatten(2).transpose(1, 2)  # [B, Hf*Wf, C], the head's input
        return out


def _init_linear(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------- pretrained weights


@dataclass
class LoadReport:
    """What loading a pretrained ViT did: keys filled, backbone keys left missing, checkpoint keys unused."""

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # backbone keys the checkpoint did not provide
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys with no place in the teacher
    adapted: list[str] = field(default_factory=list)  # keys resized/converted (pos embeds, input channels)

    def summary(self) -> str:
        return (
            f"{self.path}: loaded {len(self.loaded)} tensors, missing backbone keys {self.missing or 'none'}, "
            f"unused checkpoint keys {self.unexpected or 'none'}, adapted {self.adapted or 'none'}"
        )


def _unwrap(obj: Any, path: str) -> dict[str, torch.Tensor]:
    for key in ("model", "state_dict", "module"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state dict (name -> tensor), or one under 'model'/'state_dict'")
    out = {}
    for k, v in obj.items():
        for prefix in ("module.", "backbone.", "encoder."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        out[k] = v
    return out


def _resize_pos(pos: torch.Tensor, grid: int) -> torch.Tensor:
    """[1, N(+1 cls), C] ViT position embeddings -> [1, grid*grid, C] (bicubic over the 2-D grid)."""
    n = pos.shape[1]
    side = math.isqrt(n)
    if side * side != n:  # a class token first
        pos = pos[:, 1:]
        side = math.isqrt(pos.shape[1])
    c = pos.shape[2]
    grid_pos = pos.reshape(1, side, side, c).permute(0, 3, 1, 2)
    if side != grid:
        grid_pos = F.interpolate(grid_pos.float(), size=(grid, grid), mode="bicubic", align_corners=False)
    return grid_pos.permute(0, 2, 3, 1).reshape(1, grid * grid, c)


def _adapt_input(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """RGB patch-embedding weight [C, 3, p, p] -> [C, in_chans, p, p], preserving the summed response."""
    if weight.shape[1] == in_chans:
        return weight
    return weight.sum(dim=1, keepdim=True).repeat(1, in_chans, 1, 1) / in_chans


def load_pretrained(model: ViTTeacher, path: str | Path) -> LoadReport:
    """Load a local timm/MAE ViT state dict into the teacher's backbone (never downloads).

    ``pos_embed`` is split into template and search embeddings (class token dropped, bicubic resize);
    ``patch_embed.proj`` goes to every view's patch embedding (channel-averaged for non-RGB views).
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"pretrained weights not found: {p} (key 'model.pretrained'; weights are never downloaded)")
    raw = load_torch_file(p, "pretrained weights file (key 'model.pretrained')")
    source = _unwrap(raw, str(p))
    report = LoadReport(path=str(p))
    own = model.state_dict()
    target: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        if key == "pos_embed":
            target["pos_embed_z"] = _resize_pos(value, model.template_grid)
            target["pos_embed_x"] = _resize_pos(value, model.search_grid)
            report.adapted.append("pos_embed -> pos_embed_z, pos_embed_x")
        elif key.startswith("patch_embed.proj.") and model.stem == "patch":
            leaf = key.rsplit(".", 1)[1]
            for view in model.streams:
                name = f"patch_embed.{view}.proj.{leaf}"
                v = _adapt_input(value, own[name].shape[1]) if leaf == "weight" else value
                if v.shape != value.shape:
                    report.adapted.append(f"{key} -> {name} ({value.shape[1]} -> {v.shape[1]} channels)")
                target[name] = v
        elif key in own and not key.startswith(HEAD_PREFIXES):
            target[key] = value
        else:
            report.unexpected.append(key)
    for key, value in target.items():
        if own[key].shape != value.shape:
            raise CheckpointError(
                f"{p}: key '{key}' has shape {tuple(value.shape)}, the teacher expects {tuple(own[key].shape)} "
                "(is the variant's dim/depth that of the checkpoint?)"
            )
    model.load_state_dict(target, strict=False)
    report.loaded = sorted(target)
    report.missing = [k for k in model.backbone_keys() if k not in target]
    log.info("%s", report.summary())
    return report


def input_spec(cfg: Any) -> InputSpec:
    """The teacher's inputs under ``cfg``: one view (token stream) per modality of ``cfg.model.modalities``."""
    return InputSpec.from_modalities(cfg.model.modalities, cfg.data.voxel_bins)


def build(cfg: Any) -> ViTTeacher:
    """The teacher of ``cfg`` (ExperimentConfig): variant from cfg.model.variant + cfg.model.overrides."""
    m = cfg.model
    if m.variant not in VARIANTS:
        raise ConfigError(f"key 'model.variant': unknown teacher variant {m.variant!r}; expected one of {sorted(VARIANTS)}")
    inputs = input_spec(cfg)
    params = {**XCORR_DEFAULTS, **VARIANTS[m.variant]}
    for key, value in m.overrides.items():
        if key not in params:
            raise ConfigError(f"key 'model.overrides.{key}': not a teacher variant field (known: {sorted(params)})")
        params[key] = value
    model = ViTTeacher(
        **params,
        inputs=inputs,
        template_size=cfg.data.template_size,
        search_size=cfg.data.search_size,
    )
    if m.pretrained:
        model.pretrained_report = load_pretrained(model, m.pretrained)
    return model


__all__ = [
    "VARIANTS",
    "LoadReport",
    "ViTTeacher",
    "attention_map",
    "build",
    "input_spec",
    "load_pretrained",
]
