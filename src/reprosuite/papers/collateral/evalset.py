"""The shared evaluation of the partial-class experiments (C-F3/C-T1/C-F4).

The data, the splits, the models and the evaluation subsets come from the bank
(``reprosuite.unlearning.bank``). ``reference_eval`` computes, once per cell, everything that
depends only on the original and the retrains (similarity s(x), shared bin edges, their logits);
``evaluate`` turns one model's logits into bin rows and aggregates.
"""

from __future__ import annotations

import numpy as np

from reprosuite.unlearning import metrics as M
from reprosuite.unlearning.bank import Prepared, eval_indices
from reprosuite.unlearning.methods import UnlearnData
from reprosuite.unlearning.mia import loss_mia, svc_mia
from reprosuite.unlearning.training import predict


def model_logits(model, d: UnlearnData, prep: Prepared, idx: dict[str, np.ndarray], device: str,
                 known: dict | None = None) -> dict:
    """Logits (N, K) of one model on every evaluated split; ``known`` holds splits already computed
    for this very model (the last per-epoch evaluation's test and forget logits)."""
    xr = d.x_retain
    sets = {"test": lambda: prep.x_test, "retain": lambda: xr[idx["retain_eval"]], "forget": lambda: d.x_forget,
            "mia_member": lambda: xr[idx["mia_member"]]}
    known = known or {}
    return {k: known[k] if k in known else predict(model, x(), device) for k, x in sets.items()}


def _from_bank(saved: dict | None, idx: dict, fit_retain=None, fit_forget=None) -> dict:
    """The splits of ``model_logits`` that the bank job's own logits already hold: ``saved["fit"]``
    is over the model's training examples; ``fit_retain`` / ``fit_forget`` locate D_r / D_f in them
    (None: not among them)."""
    if saved is None:
        return {}
    out = {"test": saved["test"]}
    if fit_retain is not None:
        on_retain = saved["fit"][fit_retain]
        out.update(retain=on_retain[idx["retain_eval"]], mia_member=on_retain[idx["mia_member"]])
    if fit_forget is not None:
        out["forget"] = saved["fit"][fit_forget]
    return out


def reference_eval(main, prep: Prepared, d: UnlearnData, original, retrains: list, device: str,
                   split=None, saved: tuple | None = None) -> dict:
    """Everything a method's evaluation compares against (saved once per cell as an artifact).
    ``split`` and ``saved`` = (original's, [each retrain's]) ``bank.load_logits``: the logits the
    bank jobs computed already are reused (the same numbers: a forward does not depend on the batch)."""
    idx = eval_indices(len(d.x_retain), len(prep.x_test), retain_size=main.retain_eval_size,
                       shadow_size=main.mia_shadow_size, seed=main.subset_seed + 1)
    known_o, known_r = {}, [{} for _ in retrains]
    if saved is not None and split is not None:
        known_o = _from_bank(saved[0], idx, split.retain, split.forget)
        known_r = [_from_bank(s, idx, np.arange(len(d.x_retain))) for s in saved[1]]
    centre = M.forget_centre(predict(original, d.x_forget, device, features=True))
    sim = {"test": M.cosine_to_centre(predict(original, prep.x_test, device, features=True), centre).numpy(),
           "retain": M.cosine_to_centre(predict(original, d.x_retain[idx["retain_eval"]], device, features=True),
                                        centre).numpy()}
    edges = {(split, b): M.bin_edges(sim[split], main.n_bins, b) for split in sim for b in main.binnings}
    labels = {"test": prep.y_test, "retain": d.y_retain[idx["retain_eval"]], "forget": d.y_forget,
              "mia_member": d.y_retain[idx["mia_member"]]}
    n_consensus = len(retrains) - int(main.floor_retrain)
    return {"idx": idx, "sim": sim, "edges": edges, "labels": labels,
            "original": model_logits(original, d, prep, idx, device, known=known_o),
            "retrains": [model_logits(r, d, prep, idx, device, known=k) for r, k in zip(retrains, known_r)],
            "n_consensus": n_consensus}


def evaluate(logits: dict, ref: dict, forget_class: int, seed: int, main) -> tuple[list[dict], dict]:
    """(bin rows, aggregate dict) of one model against the consensus retrains."""
    labels, consensus = ref["labels"], ref["retrains"][: ref["n_consensus"]]
    rows = []
    for split in ("test", "retain"):
        point = M.pointwise(labels[split], logits[split], ref["original"][split], [r[split] for r in consensus])
        for binning in main.binnings:
            for row in M.binned_discrepancies(ref["sim"][split], ref["edges"][(split, binning)], point):
                rows.append({"row": "bin", "split": split, "binning": binning, **row})
    agg = M.aggregates(logits, labels, forget_class)
    agg.update(n_test_eval=len(labels["test"]), n_retain_eval=len(labels["retain"]), n_forget=len(labels["forget"]))
    nonmember = (logits["test"][ref["idx"]["mia_nonmember"]], labels["test"][ref["idx"]["mia_nonmember"]])
    mia = svc_mia((logits["mia_member"], labels["mia_member"]), nonmember, (logits["forget"], labels["forget"]),
                  variants=main.mia_variants)
    agg["mia_svc"] = mia["confidence"]
    agg.update({f"mia_svc_{k}": v for k, v in mia.items()})
    agg["mia_loss_accuracy"] = loss_mia((logits["forget"], labels["forget"]), (logits["test"], labels["test"]),
                                        seed=seed)
    return rows, agg
