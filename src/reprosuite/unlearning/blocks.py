"""Mutually orthogonal parameter subspaces ("blocks") for block-wise noisy fine-tuning
(certified paper, §3.3 item 5 of ``docs/papers/certified.md``; fig1, fig2, tab1).

Every parameter is viewed as a matrix X (m × n) whose rows span the axis that is split:

- Linear weight W (out × in): input-feature subspaces, X = Wᵀ (in × out), so W = Σᵢ Bᵢ Aᵢᵀ;
- Conv2d weight (out, in, kh, kw): output-channel subspaces, X = W.reshape(out, in·kh·kw);
- any other tensor (biases, normalisation affine vectors): X = w.reshape(numel, 1).

Block i of an ``equal`` split owns span(Aᵢ) ⊗ Rⁿ with Aᵢ (m × rᵢ) orthonormal columns:
``qr`` draws a random orthogonal matrix (QR of an m × m Gaussian in float64, stored float32) and
splits its columns; ``perm_identity`` uses random coordinate subsets; ``identity`` consecutive
coordinates. ``layers`` gives whole layers to blocks (layer j -> block j mod k) and ``head``
(k = 2) puts the classifier head in block 1 and the body in block 0.

Instead of reparameterising the model (W = Σ Bᵢ Aᵢᵀ with trainable Bᵢ, the paper's code), the
weights are kept and the projector Pᵢ = AᵢAᵢᵀ is applied to gradients, weight decay and noise;
this is the same dynamics because the Aᵢ are orthonormal. ``coefficients`` / ``compose`` give the
explicit Bᵢ (tests check that composing them reproduces the model's outputs).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

MODES = ("qr", "perm_identity", "identity")
SPLITS = ("equal", "layers", "head")
HEAD_NAMES = ("head", "fc", "classifier")


def to_matrix(name: str, t: torch.Tensor, kind: str) -> torch.Tensor:
    """The (m, n) view of a parameter whose rows are split into subspaces."""
    if kind == "linear":
        return t.t()
    if kind == "conv":
        return t.reshape(t.shape[0], -1)
    return t.reshape(-1, 1)


def from_matrix(x: torch.Tensor, shape: torch.Size, kind: str) -> torch.Tensor:
    if kind == "linear":
        return x.t()
    return x.reshape(shape)


@functools.lru_cache(maxsize=64)
def haar_orthogonal(m: int, seed: tuple[int, ...]) -> np.ndarray:
    """A Haar-distributed m × m orthogonal matrix (QR of a Gaussian in float64), cached by seed:
    runs that share a seed split the same basis for every k."""
    q, r = np.linalg.qr(np.random.default_rng(list(seed)).standard_normal((m, m)))
    q = q * np.sign(np.diag(r))
    q.setflags(write=False)
    return q


def orthonormal_bases(m: int, k: int, mode: str, seed: tuple[int, ...]) -> list[torch.Tensor | None]:
    """k bases (m × rᵢ, float32) splitting Rᵐ; None for an empty block (m < k).

    Coordinate modes return index tensors (int64, rᵢ) instead of matrices (a projector that is
    a coordinate mask is applied by indexing); so does k = 1 (the projector is the identity)."""
    if mode not in MODES:
        raise ValueError(f"blocks_mode = {mode!r}; allowed: {', '.join(MODES)}")
    if k == 1:
        return [torch.arange(m)]
    sizes = [len(c) for c in np.array_split(np.arange(m), k)]
    rng = np.random.default_rng(list(seed))
    if mode == "qr":
        q = haar_orthogonal(m, tuple(seed))
        cols = np.cumsum([0] + sizes)
        return [torch.from_numpy(q[:, a:b].astype(np.float32)) if b > a else None for a, b in zip(cols[:-1], cols[1:])]
    if mode in ("perm_identity", "identity"):
        order = rng.permutation(m) if mode == "perm_identity" else np.arange(m)
        parts = np.array_split(order, k)
        return [torch.from_numpy(np.sort(p).astype(np.int64)) if len(p) else None for p in parts]
    raise ValueError(f"blocks_mode = {mode!r}; allowed: {', '.join(MODES)}")


@dataclass
class ParamSpec:
    """How one parameter is split: ``kind`` (linear/conv/vector), ``owner`` (a whole-parameter
    block for ``layers``/``head``, else None) and per-block bases (``equal``)."""

    name: str
    shape: torch.Size
    kind: str
    owner: int | None
    bases: list[torch.Tensor | None] | None
    coordinate: bool  # bases are index tensors, not matrices (coordinate modes, k = 1)

    def full(self, i: int) -> bool:
        """Block i covers this whole parameter (its projector is the identity)."""
        if self.owner is not None:
            return self.owner == i
        b = self.bases[i]
        m = self.shape[1] if self.kind == "linear" else self.shape[0] if self.kind == "conv" else int(np.prod(self.shape))
        return b is not None and b.shape[0 if self.coordinate else 1] == m

    def empty(self, i: int) -> bool:
        return (self.owner is not None and self.owner != i) or (self.owner is None and self.bases[i] is None)


def _kind(module: nn.Module, pname: str) -> str:
    if pname == "weight" and isinstance(module, nn.Linear):
        return "linear"
    if pname == "weight" and isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        return "conv"
    return "vector"


def layer_groups(model: nn.Module) -> dict[str, int]:
    """Parameter name -> layer index. ResNets: ``layerN`` -> N, stem -> 0, head -> last + 1.
    Other models: the index of the Linear/Conv layer owning it (normalisation joins the previous)."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    found = {n: int(m.group(1)) for n in names if (m := re.search(r"(?:^|\.)layer(\d+)\.", n))}
    if found:
        last = max(found.values())
        out, seen_layer = {}, False
        for n in names:
            if n in found:
                out[n], seen_layer = found[n], True
            else:
                out[n] = last + 1 if seen_layer else 0
        return out
    out, idx = {}, -1
    for mname, module in model.named_modules():
        own = [(f"{mname}.{p}" if mname else p) for p, v in module.named_parameters(recurse=False) if v.requires_grad]
        if not own:
            continue
        if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d) or idx < 0:
            idx += 1
        for n in own:
            out[n] = idx
    return out


class Blocks:
    """k orthogonal blocks over a model's trainable parameters (see the module docstring)."""

    def __init__(self, specs: dict[str, ParamSpec], k: int, mode: str, split: str):
        self.specs, self.k, self.mode, self.split = specs, k, mode, split

    # projections ------------------------------------------------------------------------------
    def project(self, i: int, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Pᵢ applied to every tensor (same names/shapes as the parameters)."""
        out = {}
        for name, t in tensors.items():
            s = self.specs[name]
            if s.full(i):
                out[name] = t
            elif s.empty(i):
                out[name] = torch.zeros_like(t)
            else:
                x = to_matrix(name, t, s.kind)
                b = s.bases[i].to(t.device)
                if s.coordinate:
                    y = torch.zeros_like(x)
                    y[b] = x[b]
                else:
                    y = b @ (b.t() @ x)
                out[name] = from_matrix(y, t.shape, s.kind)
        return out

    def noise(self, i: int, sigma: float, like: Mapping[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Pᵢ ξ with ξ ~ N(0, σ² I), drawn inside the subspace (Aᵢ z, z ~ N(0, σ² I_{rᵢ×n}))."""
        out = {}
        for name, t in like.items():
            s = self.specs[name]
            if s.empty(i):
                out[name] = torch.zeros_like(t)
                continue
            if s.full(i):
                out[name] = sigma * torch.randn(t.shape, generator=generator, device=t.device, dtype=t.dtype)
                continue
            x = to_matrix(name, t, s.kind)
            b = s.bases[i].to(t.device)
            if s.coordinate:
                y = torch.zeros_like(x)
                y[b] = sigma * torch.randn((len(b), x.shape[1]), generator=generator, device=t.device, dtype=t.dtype)
            else:
                y = b @ (sigma * torch.randn((b.shape[1], x.shape[1]), generator=generator, device=t.device, dtype=t.dtype))
            out[name] = from_matrix(y, t.shape, s.kind)
        return out

    def norms(self, tensors: Mapping[str, torch.Tensor]) -> np.ndarray:
        """‖Pᵢ v‖ for every block i (v a parameter-shaped dict, e.g. x̂ − x̄); (k,)."""
        return np.array([float(torch.sqrt(sum((p.double() ** 2).sum() for p in self.project(i, tensors).values())))
                         for i in range(self.k)])

    def dims(self) -> np.ndarray:
        """Dimension of every block's subspace; (k,) summing to the number of parameters."""
        out = np.zeros(self.k, dtype=np.int64)
        for s in self.specs.values():
            n = int(np.prod(s.shape))
            if s.owner is not None:
                out[s.owner] += n
                continue
            m = s.shape[1] if s.kind == "linear" else s.shape[0] if s.kind == "conv" else n
            for i, b in enumerate(s.bases):
                if b is not None:
                    out[i] += (b.shape[0] if s.coordinate else b.shape[1]) * (n // m)
        return out

    # explicit reparameterisation (the paper's wrap_model) ---------------------------------------
    def coefficients(self, tensors: Mapping[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Bᵢ = Aᵢᵀ X per block (coordinate modes: the selected rows; whole-parameter owners: X)."""
        out: list[dict[str, torch.Tensor]] = [{} for _ in range(self.k)]
        for name, t in tensors.items():
            s = self.specs[name]
            x = to_matrix(name, t, s.kind)
            for i in range(self.k):
                if s.owner is not None:
                    if s.owner == i:
                        out[i][name] = x
                elif s.bases[i] is not None:
                    b = s.bases[i].to(t.device)
                    out[i][name] = x[b] if s.coordinate else b.t() @ x
        return out

    def compose(self, coeffs: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """X = Σᵢ Aᵢ Bᵢ mapped back to parameter shapes."""
        out = {}
        for name, s in self.specs.items():
            m = s.shape[1] if s.kind == "linear" else s.shape[0] if s.kind == "conv" else int(np.prod(s.shape))
            n = int(np.prod(s.shape)) // m
            x = None
            for i in range(self.k):
                if name not in coeffs[i]:
                    continue
                c = coeffs[i][name]
                if x is None:
                    x = torch.zeros((m, n), dtype=c.dtype, device=c.device)
                if s.owner is not None:
                    x = x + c
                elif s.coordinate:
                    x[s.bases[i].to(c.device)] += c
                else:
                    x = x + s.bases[i].to(c.device) @ c
            out[name] = from_matrix(x, s.shape, s.kind)
        return out


class Subspace:
    """Block i bound to a model's parameters, in its own coordinates (the step loop's fast path).

    For every parameter with a share in block i (empty ones are left out): its coordinates
    ``coef`` (a whole parameter: the parameter itself; coordinate bases: the selected rows of X;
    dense bases: B = AᵢᵀX, tracked as the phase goes), ``read`` (a parameter-shaped tensor, e.g.
    a gradient, to coordinates: one matmul Aᵢᵀ G or one row gather) and ``write`` (a change of
    coordinates back into the parameter: X += Aᵢ ΔB, one matmul or one indexed add). Weight decay
    is then a scaling of the coordinates and noise is drawn in them (``noise_shapes``: the shapes
    and order of ``Blocks.noise``, so both draw the same numbers from one generator). Because the
    Aᵢ are orthonormal, ‖Pᵢ g‖ = ‖Aᵢᵀ g‖ and everything equals the projector form of ``Blocks``.
    """

    def __init__(self, blocks: Blocks, i: int, params: Mapping[str, torch.Tensor]):
        self.names, self.params, self.kinds, self.bases, self.coef, self.noise_shapes = [], [], [], [], [], []
        for name, p in params.items():
            s = blocks.specs[name]
            if s.empty(i):
                continue
            t = p.detach()
            if s.full(i):
                kind, base, coef, shape = "full", None, t, tuple(t.shape)
            else:
                x = to_matrix(name, t, s.kind)
                base = s.bases[i].to(t.device)
                if s.coordinate:
                    kind, coef, shape = "rows", x[base], (len(base), x.shape[1])
                else:
                    kind, coef, shape = "basis", base.t() @ x, (base.shape[1], x.shape[1])
            self.names.append(name)
            self.params.append(p)
            self.kinds.append((kind, s.kind))
            self.bases.append(base)
            self.coef.append(coef)
            self.noise_shapes.append(shape)

    def read(self, j: int, t: torch.Tensor) -> torch.Tensor:
        """Coordinates of a parameter-shaped tensor (a gradient) in slot j."""
        kind, pkind = self.kinds[j]
        if kind == "full":
            return t
        x = to_matrix(self.names[j], t, pkind)
        return x[self.bases[j]] if kind == "rows" else self.bases[j].t() @ x

    def write(self, j: int, delta: torch.Tensor) -> None:
        """Parameter j += its change ``delta`` given in coordinates (no_grad); ``coef`` follows."""
        kind, pkind = self.kinds[j]
        p = self.params[j].detach()
        if kind == "full":
            p.add_(delta)  # coef aliases the parameter
            return
        x = to_matrix(self.names[j], p, pkind)
        if kind == "rows":
            x.index_add_(0, self.bases[j], delta)
        else:
            x.addmm_(self.bases[j], delta)
        self.coef[j].add_(delta)


def make_blocks(model: nn.Module, k: int, *, mode: str = "qr", split: str = "equal", seed: int = 0) -> Blocks:
    """Split ``model``'s trainable parameters into k blocks; bases seeded by (seed, parameter index)."""
    if k < 1:
        raise ValueError(f"k = {k} must be >= 1")
    if mode not in MODES:
        raise ValueError(f"blocks_mode = {mode!r}; allowed: {', '.join(MODES)}")
    if split not in SPLITS:
        raise ValueError(f"blocks_split = {split!r}; allowed: {', '.join(SPLITS)}")
    if split == "head" and k != 2:
        raise ValueError(f"k = {k} must be 2 for blocks_split = head")
    modules = dict(model.named_modules())
    groups = layer_groups(model) if split == "layers" else {}
    specs = {}
    for index, (name, p) in enumerate((n, p) for n, p in model.named_parameters() if p.requires_grad):
        mname, _, pname = name.rpartition(".")
        kind = _kind(modules[mname], pname)
        owner, bases = None, None
        if split == "layers":
            owner = groups[name] % k
        elif split == "head":
            owner = int(mname.split(".")[0] in HEAD_NAMES)
        else:
            m = p.shape[1] if kind == "linear" else p.shape[0] if kind == "conv" else p.numel()
            bases = orthonormal_bases(m, k, mode, (seed, index))
        specs[name] = ParamSpec(name, p.shape, kind, owner, bases, mode != "qr" or k == 1)
    return Blocks(specs, k, mode, split)
