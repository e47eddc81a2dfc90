"""Rotation conversions: round trips, known rotations, 6D decoding, stability near 0 and pi."""

import math

import pytest
import torch

from mdm import rotations as R


def random_rotations(n: int, seed: int = 0) -> torch.Tensor:
    """``[n, 3, 3]`` float64 rotations from uniformly random unit quaternions."""
    generator = torch.Generator().manual_seed(seed)
    quaternions = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    return R.quaternion_to_matrix(quaternions)


def assert_proper_rotation(matrix: torch.Tensor, atol: float = 1e-6) -> None:
    eye = torch.eye(3, dtype=matrix.dtype).expand_as(matrix)
    torch.testing.assert_close(matrix @ matrix.transpose(-1, -2), eye, atol=atol, rtol=0)
    torch.testing.assert_close(torch.linalg.det(matrix), torch.ones(matrix.shape[:-2], dtype=matrix.dtype),
                               atol=atol, rtol=0)


def test_random_matrices_are_rotations():
    assert_proper_rotation(random_rotations(100))


@pytest.mark.parametrize(
    "forward, backward",
    [
        (R.matrix_to_quaternion, R.quaternion_to_matrix),
        (R.matrix_to_axis_angle, R.axis_angle_to_matrix),
        (R.matrix_to_rotation_6d, R.rotation_6d_to_matrix),
    ],
)
def test_matrix_round_trips(forward, backward):
    matrices = random_rotations(200).reshape(10, 20, 3, 3)
    torch.testing.assert_close(backward(forward(matrices)), matrices, atol=1e-10, rtol=0)


def test_axis_angle_quaternion_round_trip():
    generator = torch.Generator().manual_seed(1)
    axis = torch.nn.functional.normalize(torch.randn(500, 3, generator=generator, dtype=torch.float64), dim=-1)
    angle = torch.rand(500, 1, generator=generator, dtype=torch.float64) * math.pi
    axis_angle = axis * angle
    quaternion = R.axis_angle_to_quaternion(axis_angle)
    torch.testing.assert_close(torch.linalg.vector_norm(quaternion, dim=-1), torch.ones(500, dtype=torch.float64))
    torch.testing.assert_close(R.quaternion_to_axis_angle(quaternion), axis_angle, atol=1e-10, rtol=0)


def test_90_degrees_about_z_maps_x_to_y():
    expected = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    for matrix in (
        R.axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2])),
    ):
        torch.testing.assert_close(matrix, expected, atol=1e-6, rtol=0)
    quaternion = R.matrix_to_quaternion(expected)
    half = math.sqrt(0.5)
    torch.testing.assert_close(quaternion, torch.tensor([half, 0.0, 0.0, half]), atol=1e-6, rtol=0)
    torch.testing.assert_close(R.matrix_to_axis_angle(expected), torch.tensor([0.0, 0.0, math.pi / 2]),
                               atol=1e-6, rtol=0)


def test_identity():
    eye = torch.eye(3)
    torch.testing.assert_close(R.axis_angle_to_matrix(torch.zeros(3)), eye)
    torch.testing.assert_close(R.matrix_to_axis_angle(eye), torch.zeros(3))
    torch.testing.assert_close(R.matrix_to_quaternion(eye), torch.tensor([1.0, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(R.matrix_to_rotation_6d(eye), torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))
    torch.testing.assert_close(R.rotation_6d_to_matrix(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])), eye)


def test_6d_is_first_two_columns_and_rows_convention_is_transpose():
    matrix = random_rotations(5, seed=3)
    d6 = R.matrix_to_rotation_6d(matrix)
    torch.testing.assert_close(d6[:, :3], matrix[:, :, 0])
    torch.testing.assert_close(d6[:, 3:], matrix[:, :, 1])
    rows = torch.cat((matrix[:, 0, :], matrix[:, 1, :]), -1)
    torch.testing.assert_close(R.rotation_6d_rows_to_matrix(rows), matrix, atol=1e-12, rtol=0)


def test_6d_of_non_orthogonal_input_decodes_to_rotation():
    generator = torch.Generator().manual_seed(2)
    d6 = torch.randn(1000, 6, generator=generator) * 3.0
    matrix = R.rotation_6d_to_matrix(d6)
    assert_proper_rotation(matrix, atol=1e-5)
    # The first column keeps the first half's direction.
    torch.testing.assert_close(matrix[:, :, 0], torch.nn.functional.normalize(d6[:, :3], dim=-1))


def test_near_pi_is_stable():
    generator = torch.Generator().manual_seed(4)
    axis = torch.nn.functional.normalize(torch.randn(300, 3, generator=generator, dtype=torch.float64), dim=-1)
    for angle in (math.pi, math.pi - 1e-7, math.pi - 1e-3):
        axis_angle = axis * angle
        matrix = R.axis_angle_to_matrix(axis_angle)
        back = R.axis_angle_to_matrix(R.matrix_to_axis_angle(matrix))
        torch.testing.assert_close(back, matrix, atol=1e-7, rtol=0)
        quaternion = R.matrix_to_quaternion(matrix)
        assert torch.all(quaternion[:, 0] >= 0)
        torch.testing.assert_close(R.quaternion_to_matrix(quaternion), matrix, atol=1e-10, rtol=0)


def test_near_zero_is_accurate():
    tiny = torch.tensor([[1e-9, -2e-9, 3e-9], [1e-4, 2e-4, -1e-4], [0.0, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(R.matrix_to_axis_angle(R.axis_angle_to_matrix(tiny)), tiny, atol=1e-14, rtol=1e-8)


def test_gradients_are_finite_at_angle_zero():
    axis_angle = torch.zeros(4, 3, requires_grad=True)
    R.axis_angle_to_matrix(axis_angle).sum().backward()
    assert torch.isfinite(axis_angle.grad).all()

    matrix = torch.eye(3).repeat(4, 1, 1).requires_grad_(True)
    R.matrix_to_axis_angle(matrix).pow(2).sum().backward()
    assert torch.isfinite(matrix.grad).all()

    quaternion = torch.tensor([[1.0, 0.0, 0.0, 0.0]], requires_grad=True)
    R.quaternion_to_axis_angle(quaternion).sum().backward()
    assert torch.isfinite(quaternion.grad).all()

    # The derivative of exp(w) at w = 0 is the skew-symmetric generator: d R / d w_z [1, 0] = 1.
    w = torch.zeros(3, requires_grad=True)
    R.axis_angle_to_matrix(w)[1, 0].backward()
    torch.testing.assert_close(w.grad, torch.tensor([0.0, 0.0, 1.0]))


def test_gradcheck_through_conversions():
    generator = torch.Generator().manual_seed(5)
    axis_angle = (torch.randn(6, 3, generator=generator, dtype=torch.float64) * 0.8).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: R.matrix_to_axis_angle(R.axis_angle_to_matrix(x)), (axis_angle,))
    d6 = torch.randn(6, 6, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(R.rotation_6d_to_matrix, (d6,))


@pytest.mark.parametrize(
    "function, bad_shape",
    [
        (R.axis_angle_to_matrix, (5, 4)),
        (R.axis_angle_to_quaternion, (3, 2)),
        (R.quaternion_to_matrix, (5, 3)),
        (R.quaternion_to_axis_angle, (4, 3)),
        (R.matrix_to_quaternion, (5, 3, 4)),
        (R.matrix_to_axis_angle, (9,)),
        (R.matrix_to_rotation_6d, (2, 3)),
        (R.rotation_6d_to_matrix, (5, 9)),
        (R.rotation_6d_rows_to_matrix, (3,)),
    ],
)
def test_bad_shapes_are_refused(function, bad_shape):
    with pytest.raises(ValueError, match="must have shape"):
        function(torch.zeros(bad_shape))
