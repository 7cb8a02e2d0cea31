"""Pointwise and aggregate unlearning metrics (docs/papers/collateral.md §2.5; C-F3, C-T1, C-F4).

- Proximity s(x) = cos(e(x), c_f) with e the original's penultimate features.
- Shared binning: edges depend only on s (i.e. on the original and the split), never on the
  method, so every method is binned identically (claim 2).
- Pointwise discrepancies with the retrains, per bin:
  (a) consensus disagreement: on points where all consensus retrains agree on correctness,
      1[correctness of the unlearned model differs];
  (b) err_unl(bin) - err_retrain(bin) (err = 1 - correct; retrain = mean over consensus retrains);
  (c) true-class confidence drop vs the original, p_orig(y|x) - p_unl(y|x);
  (d) argmax disagreement with the retrain (mean over consensus retrains).
- Aggregates RA/UA/TA, affected-class accuracies and Avg. Gap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:  # torch is imported where it computes: the report's tables (avg_gap) stay torch-free
    import torch


def forget_centre(feat_forget: torch.Tensor) -> torch.Tensor:
    """c_f = normalise(mean of the raw D_f embeddings); (N_f, D) -> (D,)."""
    import torch.nn.functional as F

    return F.normalize(feat_forget.mean(0), dim=0)


def cosine_to_centre(feat: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """s(x) = cos(e(x), c_f); (N, D), (D,) -> (N,)."""
    import torch.nn.functional as F

    return F.normalize(feat, dim=1) @ F.normalize(centre, dim=0)


def bin_edges(s: np.ndarray, n_bins: int, binning: Literal["equal_width", "quantile"] = "equal_width") -> np.ndarray:
    """(n_bins + 1,) edges: linspace(min s, max s) (the paper's code) or quantiles of s."""
    s = np.asarray(s, dtype=np.float64)
    if binning == "equal_width":
        return np.linspace(s.min(), s.max(), n_bins + 1)
    if binning == "quantile":
        return np.quantile(s, np.linspace(0.0, 1.0, n_bins + 1))
    raise ValueError(f"binning = {binning!r}; allowed: equal_width, quantile")


def assign_bins(s: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index in [0, n_bins) for every point; the maximum falls into the last bin."""
    n_bins = len(edges) - 1
    return np.clip(np.searchsorted(edges, np.asarray(s), side="right") - 1, 0, n_bins - 1)


def true_class_prob(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """p(y|x); (N, K), (N,) -> (N,)."""
    import torch.nn.functional as F

    return F.softmax(logits.double(), 1).gather(1, y.view(-1, 1)).squeeze(1).numpy()


def pointwise(y: torch.Tensor, unl: torch.Tensor, orig: torch.Tensor,
              retrains: Sequence[torch.Tensor]) -> dict[str, np.ndarray]:
    """Per-point quantities behind metrics (a)-(d); logits (N, K), y (N,)."""
    y_np = y.numpy()
    correct_u = unl.argmax(1).numpy() == y_np
    correct_r = np.stack([r.argmax(1).numpy() == y_np for r in retrains])  # (R, N)
    consensus = (correct_r == correct_r[0]).all(0)
    disagree = np.stack([unl.argmax(1).numpy() != r.argmax(1).numpy() for r in retrains]).mean(0)
    return {
        "consensus": consensus,
        "a": (correct_u != correct_r[0]).astype(float),
        "err_unl": 1.0 - correct_u,
        "err_retrain": 1.0 - correct_r.mean(0),
        "c": true_class_prob(orig, y) - true_class_prob(unl, y),
        "d": disagree,
    }


def binned_discrepancies(s: np.ndarray, edges: np.ndarray, point: Mapping[str, np.ndarray]) -> list[dict]:
    """One dict per bin (far -> near): edges, counts and metrics (a)-(d).

    (a) averages over the bin's consensus points only (NaN if it has none).
    """
    idx = assign_bins(s, edges)

    def mean(v: np.ndarray, mask: np.ndarray) -> float:
        return float(v[mask].mean()) if mask.any() else float("nan")

    rows = []
    for b in range(len(edges) - 1):
        m = idx == b
        cm = m & point["consensus"]
        rows.append({
            "bin": b, "bin_lo": float(edges[b]), "bin_hi": float(edges[b + 1]),
            "bin_centre": float(0.5 * (edges[b] + edges[b + 1])),
            "count": int(m.sum()), "consensus_count": int(cm.sum()),
            "mismatch_a": mean(point["a"], cm),
            "err_gap_b": mean(point["err_unl"], m) - mean(point["err_retrain"], m),
            "conf_drop_c": mean(point["c"], m),
            "argmax_disagree_d": mean(point["d"], m),
            "err_unl": mean(point["err_unl"], m), "err_retrain": mean(point["err_retrain"], m),
        })
    return rows


def accuracy_np(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(1) == y).float().mean()) if len(y) else float("nan")


def aggregates(logits: Mapping[str, torch.Tensor], labels: Mapping[str, torch.Tensor],
               forget_class: int | None) -> dict[str, float]:
    """RA (retain), UA = 1 - FA (forget), TA (test), plus affected-class RA/TA when a class is given.

    ``logits``/``labels`` have keys ``retain``, ``forget``, ``test``.
    """
    out = {"ra": accuracy_np(logits["retain"], labels["retain"]),
           "ua": 1.0 - accuracy_np(logits["forget"], labels["forget"]),
           "ta": accuracy_np(logits["test"], labels["test"])}
    if forget_class is not None:
        for split, key in (("retain", "ra_class"), ("test", "ta_class")):
            m = labels[split] == forget_class
            out[key] = accuracy_np(logits[split][m], labels[split][m])
    return out


def avg_gap(metrics: Mapping[str, float], reference: Mapping[str, float],
            keys: Sequence[str] = ("ua", "ra", "ta", "mia_svc")) -> float:
    """SalUn's Avg. Gap: mean |metric - retrain metric| over UA, RA, TA, MIA (in percent points)."""
    scale = {"mia_svc": 1.0}
    return float(np.mean([abs(metrics[k] - reference[k]) * scale.get(k, 100.0) for k in keys]))


def kl_hist(p_labels: np.ndarray, q_labels: np.ndarray | None, n_classes: int, *,
            q_probs: np.ndarray | None = None, eps: float = 1e-6) -> float:
    """KL(hist_p || hist_q) of argmax-class histograms (docs/papers/collateral.md §2.4); eps-smoothed q."""
    p = np.bincount(p_labels, minlength=n_classes).astype(float)
    p /= p.sum()
    q = q_probs if q_probs is not None else np.bincount(q_labels, minlength=n_classes).astype(float)
    q = np.asarray(q, dtype=float) / np.sum(q) + eps
    q /= q.sum()
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / q[nz])))
