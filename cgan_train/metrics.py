"""Distribution metrics on feature vectors: Frechet distance, k-NN precision and recall."""

from __future__ import annotations

import numpy as np
import torch

NEAREST_NEIGHBOURS = 3  # k of Kynkaanniemi et al. 2019
_DISTANCE_CHUNK = 2000  # rows of a distance matrix held at once


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of Gaussians fitted to [N, D] features."""
    mean_a, mean_b = features_a.mean(axis=0), features_b.mean(axis=0)
    cov_a = np.cov(features_a, rowvar=False)
    cov_b = np.cov(features_b, rowvar=False)
    # Tr((S_a S_b)^(1/2)) = Tr((S_a^(1/2) S_b S_a^(1/2))^(1/2)), a symmetric matrix: eigh is exact
    # where scipy's sqrtm of the non-symmetric product needs complex arithmetic.
    sqrt_a = _symmetric_sqrt(cov_a)
    product_eigenvalues = np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)
    trace_sqrt_product = np.sqrt(np.clip(product_eigenvalues, 0, None)).sum()
    distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt_product
    return float(max(distance, 0.0))


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def precision_recall(
    real: np.ndarray, generated: np.ndarray, k: int = NEAREST_NEIGHBOURS
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019).

    Each set's manifold is the union of balls around its points, each ball reaching the point's
    k-th nearest neighbour. Precision: the share of generated points inside the real manifold
    (are samples realistic?). Recall: the share of real points inside the generated manifold
    (is the variety of real data covered?).
    """
    real_t = torch.as_tensor(real, dtype=torch.float32)
    generated_t = torch.as_tensor(generated, dtype=torch.float32)
    precision = _share_inside(generated_t, real_t, _knn_radii(real_t, k))
    recall = _share_inside(real_t, generated_t, _knn_radii(generated_t, k))
    return precision, recall


def _knn_radii(points: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point."""
    radii = []
    for start in range(0, len(points), _DISTANCE_CHUNK):
        distances = torch.cdist(points[start : start + _DISTANCE_CHUNK], points)
        # k + 1: the nearest point is the point itself, at distance 0.
        radii.append(distances.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _share_inside(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """Share of queries within radius of at least one centre."""
    inside = 0
    for start in range(0, len(queries), _DISTANCE_CHUNK):
        distances = torch.cdist(queries[start : start + _DISTANCE_CHUNK], centres)
        inside += int((distances <= radii.unsqueeze(0)).any(dim=1).sum())
    return inside / len(queries)
