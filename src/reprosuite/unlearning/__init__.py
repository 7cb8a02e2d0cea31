"""Shared machine-unlearning core (collateral, certified).

- ``bank``: the original and the retrains, trained once per model seed as one experiment of the
  DAG (``models``), and the evaluation sets; a paper declares it with ``bank.BankSpec`` and
  ``bank.models_experiment`` and its consumers with ``bank.needs`` (API in its docstring);
- ``splits``: deterministic forget/retain splits (partial-class, full-class, random subset);
- ``training``: train originals and retrains on tensors, deterministic by seed;
- ``methods``: the ``METHODS`` registry, each method with its own config (``configs``): GA,
  GA+FT, RL (with or without D_r), FT, SalUn; ``ltd``: Local Teacher Distillation
  (docs/papers/collateral.md §2.4);
- ``metrics``: similarity to the forget centre, pointwise discrepancies, shared binning,
  RA/UA/TA and affected-class accuracies, Avg. Gap; ``mia``: SVC-MIA and loss-threshold MIA.

Everything but the bank's run function is a pure function of tensors, configs and explicit
seeds/generators; the paper packages own the records.
"""
