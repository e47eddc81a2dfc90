"""Rotation conversions: axis-angle, quaternions (w, x, y, z), 3x3 matrices and the 6D representation.

Pure torch functions over any leading batch shape, differentiable, safe near angle 0 (no
division by a vanishing angle, finite gradients) and near angle pi (matrix to quaternion picks
the best-conditioned of four candidates). Conventions:

- a rotation matrix ``R`` acts on column vectors, ``x' = R @ x``;
- axis-angle is ``axis * angle`` with ``angle`` in radians;
- quaternions are ``(w, x, y, z)`` with real part first; functions returning a quaternion
  standardise it to ``w >= 0``;
- the 6D representation (Zhou et al., "On the Continuity of Rotation Representations in
  Neural Networks", CVPR 2019) is the first two *columns* of ``R``, ``(R[:, 0], R[:, 1])``;
  decoding applies Gram-Schmidt, so any 6 numbers with non-parallel halves decode to a proper
  rotation. (pytorch3d, ACTOR and MDM store the first two *rows* instead, i.e. the 6D of
  ``R^T``; :func:`rotation_6d_rows_to_matrix` reads that convention.)
"""

from __future__ import annotations

import torch

_SMALL_ANGLE_SQ = 1e-6
"""Squared angles below this use Taylor expansions instead of sin(x) / x."""



def _check_last(tensor: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    if tensor.dim() < len(shape) or tuple(tensor.shape[-len(shape):]) != shape:
        expected = ", ".join(str(s) for s in shape)
        raise ValueError(f"{name} must have shape (..., {expected}), got {tuple(tensor.shape)}")


def _sqrt_positive_part(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(max(0, x))`` with a zero (not infinite) gradient where ``x <= 0``."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def standardize_quaternion(quaternions: torch.Tensor) -> torch.Tensor:
    """The same rotation with a non-negative real part.

    Args:
        quaternions: ``(..., 4)`` as ``(w, x, y, z)``.

    Returns:
        ``(..., 4)`` with ``w >= 0``.
    """
    _check_last(quaternions, (4,), "quaternions")
    return torch.where(quaternions[..., :1] < 0, -quaternions, quaternions)


def quaternion_to_matrix(quaternions: torch.Tensor) -> torch.Tensor:
    """Rotation matrices of quaternions (normalised first, so any non-zero scale works).

    Args:
        quaternions: ``(..., 4)`` as ``(w, x, y, z)``.

    Returns:
        ``(..., 3, 3)``.
    """
    _check_last(quaternions, (4,), "quaternions")
    w, x, y, z = torch.unbind(quaternions, -1)
    two_s = 2.0 / (quaternions * quaternions).sum(-1)
    matrix = torch.stack(
        (
            1 - two_s * (y * y + z * z), two_s * (x * y - z * w), two_s * (x * z + y * w),
            two_s * (x * y + z * w), 1 - two_s * (x * x + z * z), two_s * (y * z - x * w),
            two_s * (x * z - y * w), two_s * (y * z + x * w), 1 - two_s * (x * x + y * y),
        ),
        -1,
    )
    return matrix.reshape(quaternions.shape[:-1] + (3, 3))


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Quaternions of rotation matrices, stable for every angle including pi.

    Args:
        matrix: ``(..., 3, 3)`` rotation matrices.

    Returns:
        ``(..., 4)`` as ``(w, x, y, z)`` with ``w >= 0``.
    """
    _check_last(matrix, (3, 3), "matrix")
    m = matrix.reshape(matrix.shape[:-2] + (9,))
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = torch.unbind(m, -1)
    # Four times the squared magnitude of w, x, y, z.
    q_abs = _sqrt_positive_part(
        torch.stack(
            (
                1.0 + m00 + m11 + m22,
                1.0 + m00 - m11 - m22,
                1.0 - m00 + m11 - m22,
                1.0 - m00 - m11 + m22,
            ),
            -1,
        )
    )
    # Row k is the quaternion computed from the k-th component's magnitude, times 2 q_abs[k].
    candidates = torch.stack(
        (
            torch.stack((q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01), -1),
            torch.stack((m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20), -1),
            torch.stack((m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21), -1),
            torch.stack((m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2), -1),
        ),
        -2,
    )
    floor = torch.tensor(0.1, dtype=q_abs.dtype, device=q_abs.device)
    candidates = candidates / (2.0 * torch.maximum(q_abs[..., None], floor))
    best = q_abs.argmax(-1)
    quaternion = torch.gather(candidates, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    return standardize_quaternion(quaternion)


def axis_angle_to_quaternion(axis_angle: torch.Tensor) -> torch.Tensor:
    """Quaternions of axis-angle rotations.

    Args:
        axis_angle: ``(..., 3)``, rotation axis times angle in radians.

    Returns:
        ``(..., 4)`` as ``(w, x, y, z)``; ``w >= 0`` for angles up to pi.
    """
    _check_last(axis_angle, (3,), "axis_angle")
    angle_sq = (axis_angle * axis_angle).sum(-1, keepdim=True)
    small = angle_sq < _SMALL_ANGLE_SQ
    angle = torch.sqrt(torch.where(small, torch.ones_like(angle_sq), angle_sq))
    half = 0.5 * angle
    # sin(angle / 2) / angle and cos(angle / 2), by Taylor series near zero.
    sin_half_over_angle = torch.where(small, 0.5 - angle_sq / 48.0, torch.sin(half) / angle)
    cos_half = torch.where(small, 1.0 - angle_sq / 8.0, torch.cos(half))
    return torch.cat((cos_half, axis_angle * sin_half_over_angle), -1)


def quaternion_to_axis_angle(quaternions: torch.Tensor) -> torch.Tensor:
    """Axis-angle of quaternions (need not be unit), angle in ``[0, pi]``.

    Args:
        quaternions: ``(..., 4)`` as ``(w, x, y, z)``.

    Returns:
        ``(..., 3)``, axis times angle.
    """
    _check_last(quaternions, (4,), "quaternions")
    quaternions = standardize_quaternion(quaternions)
    quaternions = quaternions / torch.linalg.vector_norm(quaternions, dim=-1, keepdim=True)
    xyz = quaternions[..., 1:]
    sin_half_sq = (xyz * xyz).sum(-1, keepdim=True)
    small = sin_half_sq < _SMALL_ANGLE_SQ
    sin_half = torch.sqrt(torch.where(small, torch.ones_like(sin_half_sq), sin_half_sq))
    half = torch.atan2(sin_half, quaternions[..., :1])
    # angle / sin(angle / 2); near zero angle = 2 asin(s) ~ 2 s + s^3 / 3.
    scale = torch.where(small, 2.0 + sin_half_sq / 3.0, 2.0 * half / sin_half)
    return xyz * scale


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices of axis-angle rotations.

    Args:
        axis_angle: ``(..., 3)``, axis times angle in radians.

    Returns:
        ``(..., 3, 3)``.
    """
    return quaternion_to_matrix(axis_angle_to_quaternion(axis_angle))


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Axis-angle of rotation matrices, angle in ``[0, pi]``.

    Args:
        matrix: ``(..., 3, 3)``.

    Returns:
        ``(..., 3)``.
    """
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """6D representation: the first two columns of each matrix, concatenated.

    Args:
        matrix: ``(..., 3, 3)``.

    Returns:
        ``(..., 6)`` as ``(R[0, 0], R[1, 0], R[2, 0], R[0, 1], R[1, 1], R[2, 1])``.
    """
    _check_last(matrix, (3, 3), "matrix")
    return torch.cat((matrix[..., :, 0], matrix[..., :, 1]), -1)


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from the 6D representation, by Gram-Schmidt.

    The first column is the normalised first half; the second is the second half made
    orthogonal to it and normalised; the third is their cross product, so the result is a
    proper rotation (determinant 1) for any input whose halves are not parallel.

    Args:
        d6: ``(..., 6)``.

    Returns:
        ``(..., 3, 3)``.
    """
    _check_last(d6, (6,), "d6")
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), -1)


def rotation_6d_rows_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from 6D stored as the first two *rows* (pytorch3d / ACTOR / MDM).

    Args:
        d6: ``(..., 6)`` as ``(R[0, :], R[1, :])``.

    Returns:
        ``(..., 3, 3)``.
    """
    return rotation_6d_to_matrix(d6).transpose(-1, -2)
