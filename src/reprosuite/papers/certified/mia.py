"""SVC-MIA of the certified paper with a vectorised prediction (nft, fig2, tab1).

``svc_mia_confidence`` is ``reprosuite.unlearning.mia.svc_mia(..., variants=("confidence",))``:
the same features, the same rbf SVC (C = 3, gamma "auto") fitted by libsvm on the shadow
members and non-members, the same score (100 x the share of the target predicted non-member).
Only the prediction differs in how it is computed: libsvm predicts one target example at a
time (0.3 s for a 6,000-image forget set), here the decision function Σᵢ αᵢ K(svᵢ, x) + b is one
matrix product; the few examples whose decision value is within 1e-9 of 0 (where the two
summation orders could disagree) are predicted by libsvm itself, so the labels are libsvm's.
"""

from __future__ import annotations

import numpy as np
import torch

from reprosuite.unlearning.mia import mia_features

TIE = 1e-9  # |decision value| below which libsvm predicts the example


def svc_predict(clf, x: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """``clf.predict(x)`` of a fitted binary rbf ``SVC``, vectorised (float64, ``chunk`` rows at a time)."""
    sv = torch.from_numpy(np.ascontiguousarray(clf.support_vectors_, dtype=np.float64))
    coef = torch.from_numpy(np.ascontiguousarray(clf.dual_coef_[0], dtype=np.float64))
    xs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    dec = torch.cat([torch.cdist(xs[i:i + chunk], sv).square_().mul_(-clf._gamma).exp_() @ coef
                     for i in range(0, len(xs), chunk)]).numpy() + clf.intercept_[0]
    out = clf.classes_[(dec > 0).astype(int)]
    near = np.abs(dec) < TIE
    if near.any():
        out[near] = clf.predict(x[near])
    return out


def svc_mia_confidence(member: tuple[torch.Tensor, torch.Tensor], nonmember: tuple[torch.Tensor, torch.Tensor],
                       target: tuple[torch.Tensor, torch.Tensor]) -> float:
    """100 x share of the target predicted non-member; each argument is (logits, labels)."""
    from sklearn.svm import SVC

    xm, xn, xt = (mia_features(lg, lb, "confidence") for lg, lb in (member, nonmember, target))
    x = np.concatenate([xm, xn])
    if len(np.unique(x, axis=0)) < 2:  # degenerate feature (e.g. all correct): no information
        return float("nan")
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(x, np.concatenate([np.ones(len(xm)), np.zeros(len(xn))]))
    return float(100.0 * (1.0 - svc_predict(clf, xt).mean()))
