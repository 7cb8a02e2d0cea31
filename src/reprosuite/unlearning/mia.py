"""Membership-inference attacks for unlearning (docs/papers/collateral.md §2.5; certified: its SVC-MIA and loss MIA).

- SVC-MIA forget efficacy (SalUn / Unlearn-Sparse ``SVC_MIA``): an rbf SVC(C=3, gamma="auto")
  fit on shadow members (a D_r subset) vs non-members (test) on a per-example feature; the score
  is 100 x the fraction of D_f predicted non-member. Variants: correctness, confidence (p_y, the
  headline), entropy, m_entropy, prob.
- Loss-threshold MIA (NeurIPS'23 starting kit): logistic regression on the per-example loss,
  forget vs test (balanced), 10-fold cross-validated accuracy.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

VARIANTS = ("confidence", "correctness", "entropy", "m_entropy", "prob")


def mia_features(logits: torch.Tensor, y: torch.Tensor, variant: str) -> np.ndarray:
    """(N, d) attack features of one variant from logits (N, K) and labels (N,)."""
    p = F.softmax(logits.double(), 1).clamp_min(1e-30)
    py = p.gather(1, y.view(-1, 1))
    if variant == "confidence":
        out = py
    elif variant == "correctness":
        out = (p.argmax(1) == y).double().view(-1, 1)
    elif variant == "entropy":
        out = -(p * p.log()).sum(1, keepdim=True)
    elif variant == "m_entropy":  # Song & Mittal's modified entropy
        log_1mp = (1 - p).clamp_min(1e-30).log()
        onehot = F.one_hot(y, p.shape[1]).bool()
        term = torch.where(onehot, -(1 - p) * p.log(), -p * log_1mp)
        out = term.sum(1, keepdim=True)
    elif variant == "prob":
        out = p
    else:
        raise ValueError(f"unknown MIA variant {variant!r}; known: {', '.join(VARIANTS)}")
    return out.numpy()


def svc_mia(member: tuple[torch.Tensor, torch.Tensor], nonmember: tuple[torch.Tensor, torch.Tensor],
            target: tuple[torch.Tensor, torch.Tensor], variants=VARIANTS) -> dict[str, float]:
    """{variant: 100 x share of target predicted non-member}; each argument is (logits, labels)."""
    from sklearn.svm import SVC

    out = {}
    for v in variants:
        xm, xn, xt = (mia_features(lg, lb, v) for lg, lb in (member, nonmember, target))
        x = np.concatenate([xm, xn])
        lab = np.concatenate([np.ones(len(xm)), np.zeros(len(xn))])
        if len(np.unique(x, axis=0)) < 2:  # degenerate feature (e.g. all correct): no information
            out[v] = float("nan")
            continue
        clf = SVC(C=3, gamma="auto", kernel="rbf").fit(x, lab)
        out[v] = float(100.0 * (1.0 - clf.predict(xt).mean()))
    return out


def loss_mia(forget: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
             *, seed: int, folds: int = 10) -> float:
    """Cross-validated accuracy of a logistic regression on the per-example CE, forget vs test."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    lf = F.cross_entropy(forget[0].double(), forget[1], reduction="none").numpy()
    lt = F.cross_entropy(test[0].double(), test[1], reduction="none").numpy()
    rng = np.random.default_rng(seed)
    n = min(len(lf), len(lt))
    lf, lt = rng.permutation(lf)[:n], rng.permutation(lt)[:n]
    x = np.concatenate([lf, lt]).reshape(-1, 1)
    lab = np.concatenate([np.ones(n), np.zeros(n)])
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(cross_val_score(LogisticRegression(), x, lab, cv=cv, scoring="accuracy").mean())
