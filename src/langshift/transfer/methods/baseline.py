"""Baselines: ``mean`` and ``random`` new rows (the overlap is copied by both)."""

from __future__ import annotations

import torch

from .base import InitResult, MethodParams, TransferProblem, init_method, start_result


@init_method("mean")
def mean_init(problem: TransferProblem, params: MethodParams) -> InitResult:
    """Overlap copied; every new row is the mean of the source rows."""
    result = start_result(problem, "mean")
    new = problem.new_ids
    result.matrix[new] = problem.source.mean(0)
    return result


@init_method("random")
def random_init(problem: TransferProblem, params: MethodParams) -> InitResult:
    """Overlap copied; new rows sampled from N(mean, covariance) of the source rows (Hewitt 2021)."""
    result = start_result(problem, "random")
    new = problem.new_ids
    result.matrix[new] = sample_like(problem.source, new.numel(), problem.generator)
    return result


def sample_like(source: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` rows from a normal with the source rows' mean and full covariance.

    Sampled by hand (mean + z Lᵀ with L the Cholesky factor) because torch.distributions does not
    take a Generator; a tiny diagonal jitter keeps the factorisation defined for rank-deficient
    covariances (fewer rows than dimensions).
    """
    x = source.float()
    mu = x.mean(0)
    centred = x - mu
    cov = (centred.T @ centred).double() / max(x.shape[0] - 1, 1)   # float32 product, float64 factorisation
    jitter = 1e-6 * cov.diagonal().mean().clamp_min(1e-12)
    chol = torch.linalg.cholesky(cov + jitter * torch.eye(cov.shape[0], dtype=cov.dtype))
    z = torch.randn(n, x.shape[1], generator=generator)  # float32 product: float64 took 0.5 s at 27k × 576
    return (mu + z @ chol.T.float()).to(source.dtype)
