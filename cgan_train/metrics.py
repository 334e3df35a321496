"""Distribution metrics on feature vectors: Frechet distance, k-NN precision and recall; and the
spread of a figure measured several times."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from cgan_train.report import spread  # noqa: F401 (callers import it from here too)

NEAREST_NEIGHBOURS = 3  # k of Kynkaanniemi et al. 2019
_DISTANCE_CHUNK = 2000  # rows of a distance matrix held at once


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of Gaussians fitted to [N, D] features."""
    # On one thread: these matrices are small (D <= 256), and on a shared 2-core machine a second
    # thread of LAPACK spins waiting for a core and makes each distance ~50x slower (seconds).
    with _one_thread():
        a = torch.as_tensor(features_a, dtype=torch.float64)
        b = torch.as_tensor(features_b, dtype=torch.float64)
        cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
        # Tr((S_a S_b)^(1/2)) = Tr((S_a^(1/2) S_b S_a^(1/2))^(1/2)), a symmetric matrix: eigh is exact
        # where scipy's sqrtm of the non-symmetric product needs complex arithmetic.
        sqrt_a = _symmetric_sqrt(cov_a)
        product_eigenvalues = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)
        trace_sqrt_product = product_eigenvalues.clamp(min=0).sqrt().sum()
        distance = (
            ((a.mean(dim=0) - b.mean(dim=0)) ** 2).sum()
            + cov_a.trace()
            + cov_b.trace()
            - 2 * trace_sqrt_product
        )
    return float(max(float(distance), 0.0))


def _symmetric_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return (eigenvectors * eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T


@contextmanager
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def precision_recall(
    real: np.ndarray,
    generated: np.ndarray,
    k: int = NEAREST_NEIGHBOURS,
    real_radii: torch.Tensor | None = None,
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019).

    Each set's manifold is the union of balls around its points, each ball reaching the point's
    k-th nearest neighbour. Precision: the share of generated points inside the real manifold
    (are samples realistic?). Recall: the share of real points inside the generated manifold
    (is the variety of real data covered?). real_radii: knn_radii(real, k), when already known.
    """
    real_t = torch.as_tensor(real, dtype=torch.float32)
    generated_t = torch.as_tensor(generated, dtype=torch.float32)
    if real_radii is None:
        real_radii = knn_radii(real_t, k)
    precision = _share_inside(generated_t, real_t, real_radii)
    recall = _share_inside(real_t, generated_t, knn_radii(generated_t, k))
    return precision, recall


def knn_radii(points: np.ndarray | torch.Tensor, k: int = NEAREST_NEIGHBOURS) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point."""
    points = torch.as_tensor(points, dtype=torch.float32)
    radii = []
    for start in range(0, len(points), _DISTANCE_CHUNK):
        distances = torch.cdist(points[start : start + _DISTANCE_CHUNK], points)
        # k + 1: the nearest point is the point itself, at distance 0. (topk: kthvalue gives the
        # same value, seven times slower.)
        radii.append(distances.topk(k + 1, dim=1, largest=False).values[:, -1])
    return torch.cat(radii)


def _share_inside(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """Share of queries within radius of at least one centre."""
    inside = 0
    for start in range(0, len(queries), _DISTANCE_CHUNK):
        distances = torch.cdist(queries[start : start + _DISTANCE_CHUNK], centres)
        inside += int((distances <= radii.unsqueeze(0)).any(dim=1).sum())
    return inside / len(queries)
