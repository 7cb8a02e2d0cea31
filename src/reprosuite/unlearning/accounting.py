"""Privacy accounting of certified unlearning by noisy fine-tuning (certified paper, §3 of
``docs/papers/certified.md``; fig_acct and every run's certificate).

Units. ``eps_q`` is the Rényi-DP value at order ``q`` (the paper's code); Koloskova et al. write
``eps_R = eps_q / q``. Pure functions of numbers only; no torch.

- ``optimal_order`` / ``optimal_order_numeric``: the Rényi order q* minimising σ for a target
  (ε, δ) (closed form q* = 1 + a + sqrt(a(1 + a)), a = log(1/δ)/ε; and a numeric argmin);
- ``rdp_budget`` and ``rdp_to_dp``: ε ↔ ε_q (Mironov's conversion, or the tighter Balle et al.
  conversion through opacus' ``get_privacy_spent``);
- ``noise_sigma`` / ``steps_ft``: the paper's per-injection σ and noisy-phase step count;
  ``koloskova_sigma`` / ``koloskova_rdp``: the Koloskova et al. formula they derive from (the
  last through opacus' Gaussian RDP, ``compute_rdp`` at sampling rate 1);
- ``block_budgets``, ``block_constants``, ``compose_rdp``, ``plan``: the split over k blocks and
  its composition back to (ε, δ) under the per-block policies ``shared`` / ``scaled`` / ``measured``;
- ``chebyshev_c0``: C₀ = Δ(ρ)/2 with Δ(ρ) = sqrt(mean ‖x̂ − x̄‖² / ρ).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

POLICIES = ("shared", "scaled", "measured")
BUDGET_SPLITS = ("uniform", "proportional")
CONVERSIONS = ("mironov", "balle")


def _check_eps_delta(eps: float, delta: float) -> None:
    if not eps > 0:
        raise ValueError(f"epsilon = {eps} must be > 0")
    if not 0 < delta < 1:
        raise ValueError(f"delta = {delta} must be in (0, 1)")


# (ε, δ) <-> (q, ε_q) ---------------------------------------------------------------------------
def optimal_order(*, eps: float, delta: float) -> float:
    """q* = argmin_q q / ε_q(q) with ε_q(q) = ε − log(1/δ)/(q − 1): 1 + a + sqrt(a(1 + a))."""
    _check_eps_delta(eps, delta)
    a = math.log(1.0 / delta) / eps
    return 1.0 + a + math.sqrt(a * (1.0 + a))


def rdp_budget(*, eps: float, delta: float, q: float) -> float:
    """ε_q: the Rényi budget at order q that Mironov's conversion turns into (ε, δ)."""
    _check_eps_delta(eps, delta)
    if q <= 1:
        raise ValueError(f"q = {q} must be > 1")
    return eps - math.log(1.0 / delta) / (q - 1.0)


def optimal_order_numeric(*, eps: float, delta: float) -> float:
    """The same q* by bounded scalar minimisation of q / ε_q(q) over q > 1 + log(1/δ)/ε."""
    from scipy.optimize import minimize_scalar

    a = math.log(1.0 / delta) / eps
    lo = 1.0 + a
    res = minimize_scalar(lambda q: q / rdp_budget(eps=eps, delta=delta, q=q),
                          bounds=(lo * (1 + 1e-12) + 1e-12, lo * 50 + 50), method="bounded",
                          options={"xatol": 1e-12, "maxiter": 2000})
    return float(res.x)


def rdp_to_dp(*, eps_q: float, q: float, delta: float, conversion: str = "mironov") -> float:
    """(ε_q at order q) -> ε of (ε, δ)-DP. ``mironov``: ε_q + log(1/δ)/(q − 1) (the paper's);
    ``balle``: ε_q − (log δ + log q)/(q − 1) + log((q − 1)/q) (opacus; Koloskova's plots)."""
    if conversion == "mironov":
        return eps_q + math.log(1.0 / delta) / (q - 1.0)
    if conversion == "balle":
        import warnings

        from opacus.accountants.analysis.rdp import get_privacy_spent

        with warnings.catch_warnings():  # one order only: opacus warns that it is an extreme
            warnings.simplefilter("ignore")
            eps, _ = get_privacy_spent(orders=[q], rdp=[eps_q], delta=delta)
        return float(eps)
    raise ValueError(f"rdp_conversion = {conversion!r}; allowed: {', '.join(CONVERSIONS)}")


def compose_rdp(eps_q_blocks: Sequence[float]) -> float:
    """Sequential composition of Rényi budgets at one order: their sum (Mironov, Prop. 1)."""
    return float(math.fsum(eps_q_blocks))


# σ and T of noisy fine-tuning --------------------------------------------------------------------
def _check_constants(eta: float, lam: float, c0: float, c1: float) -> None:
    for name, v in (("eta", eta), ("c0", c0), ("c1", c1)):
        if not v > 0:
            raise ValueError(f"{name} = {v} must be > 0")
    if lam < 0:
        raise ValueError(f"lam = {lam} must be >= 0")
    if not eta * lam < 1:
        raise ValueError(f"eta * lam = {eta * lam} must be < 1")
    if not lam * c0 < c1:
        raise ValueError(f"lam * c0 = {lam * c0} must be < c1 = {c1} (accounting assertion)")


def noise_sigma(*, eps_q: float, q: float, eta: float, lam: float, c0: float, c1: float) -> float:
    """The paper's per-injection σ = sqrt((2q/ε_q) η(2 − ηλ) C₀ C₁ (2 − λC₀/C₁))."""
    _check_constants(eta, lam, c0, c1)
    if not eps_q > 0:
        raise ValueError(f"eps_q = {eps_q} must be > 0")
    return math.sqrt((2.0 * q / eps_q) * eta * (2.0 - eta * lam) * c0 * c1 * (2.0 - lam * c0 / c1))


def steps_ft(*, eta: float, lam: float, c0: float, c1: float, m: int = 2) -> tuple[int, int]:
    """(T_ft gradient steps, T total steps) of one noisy phase with a noise step every m steps.

    T_ft = ceil(log(1 − λC₀/C₁) / log(1 − ηλ)) rounded up to a multiple of m − 1; T = T_ft·m/(m − 1),
    at least m (the paper's code; λ > 0).
    """
    _check_constants(eta, lam, c0, c1)
    if m < 2:
        raise ValueError(f"m = {m} must be >= 2")
    if lam == 0:
        raise ValueError("steps_ft needs lam > 0; use pabi_steps for lam = 0")
    t_ft = math.ceil(math.log(1.0 - lam * c0 / c1) / math.log(1.0 - eta * lam) - 1e-12)
    t_ft = max(m - 1, math.ceil(t_ft / (m - 1)) * (m - 1))
    return t_ft, max(m, t_ft * m // (m - 1))


def pabi_steps(*, eta: float, lam: float, c0: float, c1: float) -> int:
    """Koloskova's T = ceil(C₀/(C₁η)), replaced by ceil(log(2λC₀/C₁)/(ηλ)) when positive and smaller."""
    t = math.ceil(c0 / (c1 * eta))
    if lam > 0:
        alt = math.log(2 * lam * c0 / c1) / (eta * lam)
        if alt > 0:
            t = min(t, math.ceil(alt))
    return t


def koloskova_sensitivity(*, steps: int, eta: float, lam: float, c0: float, c1: float) -> float:
    """Δ_T = 2C₀aᵀ + (2C₁/λ)(1 − aᵀ), a = 1 − ηλ (λ = 0: 2C₀ + 2C₁ηT)."""
    if lam == 0:
        return 2 * c0 + 2 * c1 * eta * steps
    a_t = (1.0 - eta * lam) ** steps
    return 2 * c0 * a_t + (2 * c1 / lam) * (1 - a_t)


def koloskova_sigma(*, eps_r: float, eta: float, lam: float, c0: float, c1: float,
                    steps: int | None = None, x: float | None = None) -> float:
    """Koloskova et al.'s constant σ for T = ``steps`` (or at aᵀ = ``x``), Rényi budget ε_R.

    λ > 0: σ² = Δ² ηλ(2 − ηλ) / (2 ε_R (1 − a^{2T})), Δ = 2C₀aᵀ + (2C₁/λ)(1 − aᵀ);
    λ = 0: σ² = (2C₀ + 2C₁ηT)² / (4 ε_R T).
    """
    if lam == 0:
        if steps is None:
            raise ValueError("lam = 0 needs steps")
        return math.sqrt((2 * c0 + 2 * c1 * eta * steps) ** 2 / (4 * eps_r * steps))
    a_t = (1.0 - eta * lam) ** steps if x is None else x
    delta_t = 2 * c0 * a_t + (2 * c1 / lam) * (1 - a_t)
    return math.sqrt(delta_t**2 * eta * lam * (2 - eta * lam) / (2 * eps_r * (1 - a_t**2)))


def koloskova_rdp(*, sigma: float, q: float, steps: int, eta: float, lam: float, c0: float, c1: float) -> float:
    """ε_q spent by T noisy steps of constant σ (λ > 0): a Gaussian mechanism with sensitivity Δ_T
    and effective noise σ² Σ_t a^{2t}; its RDP at order q via opacus (sampling rate 1)."""
    from opacus.accountants.analysis.rdp import compute_rdp

    a2 = (1.0 - eta * lam) ** 2
    sigma_eff = sigma * math.sqrt((1 - a2**steps) / (1 - a2))
    delta_t = koloskova_sensitivity(steps=steps, eta=eta, lam=lam, c0=c0, c1=c1)
    return float(compute_rdp(q=1.0, noise_multiplier=sigma_eff / delta_t, steps=1, orders=[q])[0])


def injection_sigma(sigma: float, *, eta: float, lam: float, m: int = 2) -> float:
    """σ of one injection when noise is added every m steps: σ sqrt((1 − a^m)/(1 − a²)) (= σ at m = 2)."""
    a = 1.0 - eta * lam
    return sigma * math.sqrt((1 - a**m) / (1 - a**2))


def chebyshev_c0(distances: Sequence[float], *, rho: float) -> float:
    """C₀ = Δ(ρ)/2, Δ(ρ) = sqrt(mean ‖x̂ − x̄‖² / ρ): P[‖x̂ − x̄‖ > Δ(ρ)] ≤ ρ (Chebyshev/Markov)."""
    if not 0 < rho < 1:
        raise ValueError(f"rho = {rho} must be in (0, 1)")
    d = np.asarray(distances, dtype=float)
    if d.size == 0:
        raise ValueError("chebyshev_c0 needs at least one base/retrain distance")
    return 0.5 * math.sqrt(float(np.mean(d**2)) / rho)


# k blocks ---------------------------------------------------------------------------------------
def block_constants(*, c0: float, c1: float, k: int, policy: str,
                    shares: Sequence[float] | None = None) -> list[tuple[float, float]]:
    """(C₀,ᵢ, C₁,ᵢ) per block. ``shared``: (C₀, C₁); ``scaled``: (C₀/√k, C₁/√k);
    ``measured``: C₀,ᵢ = C₀·sᵢ, C₁,ᵢ = C₁·sᵢ with sᵢ = ‖Pᵢ(x̂ − x̄)‖/‖x̂ − x̄‖ (``shares``, Σ sᵢ² = 1).
    Every policy keeps C₀,ᵢ/C₁,ᵢ = C₀/C₁, hence the same T_ft."""
    if k < 1:
        raise ValueError(f"k = {k} must be >= 1")
    if policy == "shared":
        return [(c0, c1)] * k
    if policy == "scaled":
        return [(c0 / math.sqrt(k), c1 / math.sqrt(k))] * k
    if policy == "measured":
        if shares is None or len(shares) != k:
            raise ValueError("block_constants = measured needs one share per block")
        return [(c0 * s, c1 * s) for s in shares]
    raise ValueError(f"block_constants = {policy!r}; allowed: {', '.join(POLICIES)}")


def block_budgets(*, eps_q: float, k: int, split: str = "uniform",
                  weights: Sequence[float] | None = None) -> list[float]:
    """ε_q,ᵢ with Σ ε_q,ᵢ = ε_q: ``uniform`` ε_q/k; ``proportional`` ∝ ``weights`` (per-block
    sensitivity; ``plan`` passes C₀,ᵢ², the Gaussian RDP cost at fixed σ)."""
    if split == "uniform":
        return [eps_q / k] * k
    if split == "proportional":
        w = np.asarray(weights, dtype=float)
        if w.shape != (k,) or (w < 0).any() or w.sum() <= 0:
            raise ValueError("budget_split = proportional needs k non-negative weights with a positive sum")
        return list(eps_q * w / w.sum())
    raise ValueError(f"budget_split = {split!r}; allowed: {', '.join(BUDGET_SPLITS)}")


@dataclass(frozen=True)
class BlockCertificate:
    """What one block's noisy phase satisfies (written into every run's records)."""

    block: int
    eps_q_block: float
    c0: float
    c1: float
    sigma: float
    t_ft: int
    steps: int


@dataclass(frozen=True)
class Plan:
    """The certificate of a (block-wise) noisy fine-tuning run: (ε, δ) at order q, split over blocks."""

    eps: float
    delta: float
    q: float
    eps_q: float
    k: int
    policy: str
    blocks: tuple[BlockCertificate, ...]

    @property
    def eps_composed(self) -> float:
        """ε_DP recovered from the blocks: Mironov(Σ ε_q,ᵢ) (equals ``eps``)."""
        return rdp_to_dp(eps_q=compose_rdp([b.eps_q_block for b in self.blocks]), q=self.q, delta=self.delta)

    def record(self) -> dict:
        """Flat columns for a record: the per-block values of block 0 plus totals."""
        b0 = self.blocks[0]
        nonzero = [b for b in self.blocks if b.eps_q_block > 0]
        return {"epsilon": self.eps, "delta": self.delta, "q": self.q, "eps_q": self.eps_q, "k": self.k,
                "block_constants": self.policy, "eps_q_block": b0.eps_q_block, "sigma": b0.sigma,
                "sigma_max": max(b.sigma for b in nonzero), "c0_block": b0.c0, "c1_block": b0.c1,
                "t_ft": b0.t_ft, "steps_block": b0.steps, "noisy_steps_total": sum(b.steps for b in self.blocks),
                "eps_composed": self.eps_composed}

    def as_dict(self) -> dict:
        return asdict(self)


def plan(*, eps: float, delta: float, k: int, eta: float, lam: float, c0: float, c1: float,
         policy: str = "shared", split: str = "uniform", shares: Sequence[float] | None = None,
         m: int = 2) -> Plan:
    """Budget → q*, ε_q → per-block (ε_q,ᵢ, C₀,ᵢ, C₁,ᵢ, σᵢ, T_ft, T) for k sequential blocks."""
    q = optimal_order(eps=eps, delta=delta)
    eps_q = rdp_budget(eps=eps, delta=delta, q=q)
    consts = block_constants(c0=c0, c1=c1, k=k, policy=policy, shares=shares)
    budgets = block_budgets(eps_q=eps_q, k=k, split=split, weights=[a**2 for a, _ in consts])
    t_ft, t_total = steps_ft(eta=eta, lam=lam, c0=c0, c1=c1, m=m)
    blocks = []
    for i, ((a, b), e) in enumerate(zip(consts, budgets)):
        if a <= 0 or e <= 0:  # an empty block (no sensitivity, or a zero share): nothing to certify
            blocks.append(BlockCertificate(i, e, a, b, 0.0, 0, 0))
            continue
        blocks.append(BlockCertificate(i, e, a, b, noise_sigma(eps_q=e, q=q, eta=eta, lam=lam, c0=a, c1=b),
                                       t_ft, t_total))
    return Plan(eps, delta, q, eps_q, k, policy, tuple(blocks))
