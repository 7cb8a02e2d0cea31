"""Shared machine-unlearning core (collateral, certified).

- ``splits``: deterministic forget/retain splits (partial-class, full-class, random subset);
- ``training``: train originals and retrains on tensors, deterministic by seed;
- ``methods``: GA, GA+FT, RL (with or without D_r), FT, SalUn; ``ltd``: Local Teacher
  Distillation (collateral spec §3.4);
- ``metrics``: similarity to the forget centre, pointwise discrepancies, shared binning,
  RA/UA/TA and affected-class accuracies, Avg. Gap; ``mia``: SVC-MIA and loss-threshold MIA.

Everything is a pure function of tensors, configs and explicit seeds/generators; the paper
packages own the data loading and the records.
"""
