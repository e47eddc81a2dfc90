"""Per-clip transforms of the training-time data pipeline: sampling, centring, view, augmentation.

Every function takes one clip as a numpy array, ``[T, J, 3]`` (one person) or
``[T, M, J, 3]`` (M persons), and returns a new array; random ones take an explicit
``np.random.Generator``. An absent person (all zeros in a frame) stays all zeros.
:func:`prepare_clip` chains them according to a :class:`ClipPipelineConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mdm.errors import ConfigError
from mdm.skeleton import Skeleton


def _persons(clip: np.ndarray) -> np.ndarray:
    """View of a clip as ``[T, M, J, 3]`` (M = 1 for a one-person clip)."""
    if clip.ndim == 3:
        return clip[:, None]
    if clip.ndim == 4:
        return clip
    raise ValueError(f"a clip must be [T, J, 3] or [T, M, J, 3], got shape {list(clip.shape)}")


def present_mask(clip: np.ndarray) -> np.ndarray:
    """bool ``[T, M]``: True where a person is present (not all zeros) in a frame."""
    return np.any(_persons(clip) != 0, axis=(-2, -1))


def _check_length(clip: np.ndarray, num_frames: int) -> None:
    if clip.shape[0] < 1:
        raise ValueError("a clip needs at least one frame")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")


def pad_frames(clip: np.ndarray, num_frames: int) -> tuple[np.ndarray, int]:
    """Zero-pad (or keep) a clip of at most ``num_frames`` frames at its end.

    Returns:
        the clip ``[num_frames, ...]`` and its valid length (frames before the padding).
    """
    valid = clip.shape[0]
    if valid > num_frames:
        raise ValueError(f"cannot pad a clip of {valid} frames to {num_frames}")
    out = np.zeros((num_frames,) + clip.shape[1:], dtype=clip.dtype)
    out[:valid] = clip
    return out, valid


def random_crop(clip: np.ndarray, num_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A random window of ``num_frames`` consecutive frames; shorter clips are zero-padded.

    Returns:
        the clip ``[num_frames, ...]`` and its valid length ``min(T, num_frames)``.
    """
    _check_length(clip, num_frames)
    start = int(rng.integers(0, max(clip.shape[0] - num_frames, 0) + 1))
    return pad_frames(clip[start:start + num_frames], num_frames)


def center_crop(clip: np.ndarray, num_frames: int) -> tuple[np.ndarray, int]:
    """The central window of ``num_frames`` frames (evaluation); shorter clips are zero-padded.

    Returns:
        the clip ``[num_frames, ...]`` and its valid length ``min(T, num_frames)``.
    """
    _check_length(clip, num_frames)
    start = max(clip.shape[0] - num_frames, 0) // 2
    return pad_frames(clip[start:start + num_frames], num_frames)


def interpolate_frames(clip: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation of a clip at fractional frame positions.

    A person absent in either neighbouring frame is not blended with zeros: the nearest
    frame is taken instead, so absent persons stay all zeros.

    Args:
        clip: ``[T, J, 3]`` or ``[T, M, J, 3]``.
        positions: float ``[N]`` in ``[0, T - 1]``.

    Returns:
        ``[N, ...]`` with the dtype of ``clip``.
    """
    persons = _persons(clip)
    last = clip.shape[0] - 1
    positions = np.clip(np.asarray(positions, dtype=np.float64), 0.0, last)
    low = np.floor(positions).astype(np.int64)
    high = np.minimum(low + 1, last)
    weight = (positions - low)[:, None, None, None]
    blended = (1.0 - weight) * persons[low] + weight * persons[high]
    present = present_mask(clip)
    both = (present[low] & present[high])[:, :, None, None]
    nearest = persons[np.rint(positions).astype(np.int64)]
    out = np.where(both, blended, nearest).astype(clip.dtype)
    return out.reshape((len(positions),) + clip.shape[1:])


def _check_fraction_range(window_range: tuple[float, float], name: str) -> None:
    low, high = window_range
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(f"{name} must satisfy 0 < low <= high <= 1, got {tuple(window_range)}")


def resample(
    clip: np.ndarray,
    num_frames: int,
    rng: np.random.Generator | None = None,
    window_range: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """Uniform temporal resampling by linear interpolation to exactly ``num_frames`` frames.

    Without ``rng`` the whole clip is resampled (evaluation). With ``rng`` (training) a
    random sub-window is resampled: its share of the clip is drawn uniformly from
    ``window_range`` and its start uniformly among the positions that fit.

    Returns:
        ``[num_frames, ...]``; every frame is valid.
    """
    _check_length(clip, num_frames)
    _check_fraction_range(window_range, "window_range")
    span = float(clip.shape[0] - 1)
    start = 0.0
    if rng is not None:
        span *= float(rng.uniform(window_range[0], window_range[1]))
        start = float(rng.uniform(0.0, clip.shape[0] - 1 - span))
    return interpolate_frames(clip, start + np.linspace(0.0, span, num_frames))


def change_speed(clip: np.ndarray, factor: float) -> np.ndarray:
    """Play a clip ``factor`` times faster: ``max(1, round(T / factor))`` frames by interpolation."""
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    frames = max(1, int(round(clip.shape[0] / factor)))
    return interpolate_frames(clip, np.linspace(0.0, clip.shape[0] - 1, frames))


def _reference_root(persons: np.ndarray, present: np.ndarray, root: int) -> np.ndarray:
    """float ``[T, 3]``: per frame the root of the first present person (zeros if none)."""
    first = np.argmax(present, axis=1)
    origin = persons[np.arange(len(persons)), first, root]
    return np.where(present.any(axis=1)[:, None], origin, 0.0)


def centre(clip: np.ndarray, skeleton: Skeleton, mode: Literal["first_frame", "per_frame"]) -> np.ndarray:
    """Subtract a root position from every present person.

    ``first_frame``: the root of the first present person in the first frame where anyone
    is present (one translation for the whole clip; persons keep their relative places).
    ``per_frame``: in each frame, the root of that frame's first present person.
    """
    persons = _persons(clip)
    present = present_mask(clip)
    origins = _reference_root(persons, present, skeleton.root)
    if mode == "first_frame":
        origins = np.broadcast_to(origins[np.argmax(present.any(axis=1))], origins.shape)
    elif mode != "per_frame":
        raise ValueError(f"unknown centring mode {mode!r}; expected 'first_frame' or 'per_frame'")
    out = np.where(present[:, :, None, None], persons - origins[:, None, None, :], 0.0)
    return out.astype(clip.dtype).reshape(clip.shape)


def rotation_about_axis(angle: float, axis: int) -> np.ndarray:
    """float64 ``[3, 3]`` right-handed rotation by ``angle`` radians about coordinate ``axis``."""
    i, j = (axis + 1) % 3, (axis + 2) % 3
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.eye(3)
    rotation[i, i], rotation[i, j], rotation[j, i], rotation[j, j] = c, -s, s, c
    return rotation


def rotate_vertical(clip: np.ndarray, angle: float, up_axis: int) -> np.ndarray:
    """Rotate a clip by ``angle`` radians about the vertical axis through the origin."""
    rotation = rotation_about_axis(angle, up_axis)
    return (clip @ rotation.T).astype(clip.dtype)


def lateral_axis(up_axis: int) -> int:
    """The left/right coordinate: x, or z when x is up."""
    return 2 if up_axis == 0 else 0


HIP_WORDS = ("hip", "upper_leg", "upleg", "thigh")
"""Words that name a hip joint in the skeletons met so far (Kinect and SMPL ``hip``, Bandai Namco's
``upper_leg``, Mixamo's ``UpLeg``)."""


def _named_pair(skeleton: Skeleton, *parts: str) -> tuple[int, int] | None:
    """``(left, right)`` mirror pair whose joint names both contain one of ``parts`` (tried in order), if any."""
    for part in parts:
        for left, right in skeleton.mirror_pairs:
            if part in skeleton.joint_names[left].lower() and part in skeleton.joint_names[right].lower():
                return left, right
    return None


def side_pair(skeleton: Skeleton) -> tuple[int, int]:
    """``(left, right)`` hips of a skeleton, else its shoulders, found among its mirror pairs."""
    pair = _named_pair(skeleton, *HIP_WORDS) or _named_pair(skeleton, "shoulder")
    if pair is None:
        raise ConfigError(
            f"skeleton {skeleton.name} has no left/right hips or shoulders among its mirror pairs, "
            "so the view cannot be normalised; turn view_normalise off"
        )
    return pair


def rotation_between(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """float64 ``[3, 3]``: the smallest rotation taking direction ``source`` to direction ``target``.

    Opposite directions have no unique smallest rotation; the identity is returned for them
    and for zero vectors.
    """
    a = np.asarray(source, np.float64)
    b = np.asarray(target, np.float64)
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    if norm_a < 1e-8 or norm_b < 1e-8:
        return np.eye(3)
    a, b = a / norm_a, b / norm_b
    axis = np.cross(a, b)
    cos = float(np.dot(a, b))
    if cos < -1.0 + 1e-8:
        return np.eye(3)
    cross = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + cross + cross @ cross / (1.0 + cos)


def trunk_pairs(skeleton: Skeleton) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((left hip, right hip), (left shoulder, right shoulder))`` of a skeleton, for :func:`upright_rotation`."""
    hips, shoulders = _named_pair(skeleton, *HIP_WORDS), _named_pair(skeleton, "shoulder")
    if hips is None or shoulders is None:
        raise ConfigError(
            f"skeleton {skeleton.name} has no left/right hips and shoulders, so it cannot be made upright; "
            "turn upright off"
        )
    return hips, shoulders


VIEW_REFERENCES = ("first_frame", "clip")
"""What the upright and view normalisations read (``ClipPipelineConfig.view_reference``)."""


def _check_reference(reference: str) -> None:
    if reference not in VIEW_REFERENCES:
        raise ValueError(f"unknown view reference {reference!r}; expected one of {list(VIEW_REFERENCES)}")


def _as_poses(poses: np.ndarray) -> np.ndarray:
    """float64 ``[F, J, 3]`` from one pose ``[J, 3]`` or several ``[F, J, 3]``."""
    poses = np.asarray(poses, np.float64)
    return poses[None] if poses.ndim == 2 else poses


def upright_rotation(poses: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """float64 ``[3, 3]``: the smallest rotation taking the trunk (mid-hips to mid-shoulders),
    averaged over the poses ``[J, 3]`` or ``[F, J, 3]``, to the up axis. Needs left/right hips
    and shoulders."""
    hips, shoulders = trunk_pairs(skeleton)
    poses = _as_poses(poses)
    trunk = (poses[:, list(shoulders)].mean(axis=1) - poses[:, list(hips)].mean(axis=1)).mean(axis=0)
    return rotation_between(trunk, np.eye(3)[skeleton.up_axis])


def side_direction(poses: np.ndarray, skeleton: Skeleton, reference: str = "first_frame") -> np.ndarray:
    """float64 ``[3]``: the body's right-to-left direction that :func:`view_rotation` turns onto the
    lateral axis.

    ``first_frame``: the hip line (the shoulders if there are no hips) of the first pose.
    ``clip``: over every pose ``[F, J, 3]`` and every left/right joint pair, the horizontal
    right-to-left direction as a unit vector, summed: steadier than one hip line of a noisy
    skeleton (docs/results.md, "Recognition").
    """
    _check_reference(reference)
    poses = _as_poses(poses)
    if reference == "first_frame":
        left, right = side_pair(skeleton)
        return poses[0, left] - poses[0, right]
    if not skeleton.mirror_pairs:
        raise ConfigError(f"skeleton {skeleton.name} has no left/right joint pairs, so the view cannot be "
                          "normalised; turn view_normalise off")
    pairs = np.asarray(skeleton.mirror_pairs)
    lines = poses[:, pairs[:, 0]] - poses[:, pairs[:, 1]]
    horizontal = lines.copy()
    horizontal[..., skeleton.up_axis] = 0.0
    lengths = np.linalg.norm(horizontal, axis=-1, keepdims=True)
    return np.where(lengths > 1e-8, lines / np.maximum(lengths, 1e-8), 0.0).sum(axis=(0, 1))


def view_rotation(poses: np.ndarray, skeleton: Skeleton, reference: str = "first_frame") -> np.ndarray:
    """float64 ``[3, 3]``: the rotation about the vertical axis that puts :func:`side_direction` of
    the poses ``[J, 3]`` or ``[F, J, 3]`` along the positive lateral axis; the identity for a
    degenerate (vertical) direction."""
    line = side_direction(poses, skeleton, reference)
    up = skeleton.up_axis
    i, j = (up + 1) % 3, (up + 2) % 3
    if np.hypot(line[i], line[j]) < 1e-8:
        return np.eye(3)
    target = np.pi / 2 if lateral_axis(up) == j else 0.0
    return rotation_about_axis(target - np.arctan2(line[j], line[i]), up)


def normalising_rotation(poses: np.ndarray, skeleton: Skeleton, upright: bool, view: bool,
                         reference: str = "first_frame") -> np.ndarray:
    """float64 ``[3, 3]``: the rotation of :func:`normalise_clip` for a clip whose reference poses
    (:func:`reference_poses`) are ``poses`` ``[J, 3]`` or ``[F, J, 3]``."""
    poses = _as_poses(poses)
    rotation = upright_rotation(poses, skeleton) if upright else np.eye(3)
    if view:
        rotation = view_rotation(poses @ rotation.T, skeleton, reference) @ rotation
    return rotation


def reference_poses(clip: np.ndarray, reference: str = "first_frame") -> np.ndarray:
    """``[F, J, 3]``: the poses a clip is normalised by: those of the first present person in the
    first frame where anyone is present, in that frame only (``first_frame``, F = 1) or in every
    frame where that person is present (``clip``)."""
    _check_reference(reference)
    persons = _persons(clip)
    present = present_mask(clip)
    frame = int(np.argmax(present.any(axis=1)))
    person = int(np.argmax(present[frame]))
    if reference == "clip" and present[:, person].any():
        return persons[present[:, person], person]
    return persons[frame:frame + 1, person]


def normalise_clip(clip: np.ndarray, skeleton: Skeleton, upright: bool, view: bool,
                   reference: str = "first_frame") -> np.ndarray:
    """Rotate a clip into the canonical frame of its reference poses (:func:`reference_poses`), as
    one rotation through the origin (centre first).

    ``upright``: the trunk (mid-hips to mid-shoulders; averaged over the reference poses) points
    straight up, which removes the camera's pitch and roll (NW-UCLA's views look at people from
    different heights); needs left/right hips and shoulders. ``view``: then, about the vertical
    axis, :func:`side_direction` points from right to left along the positive lateral axis (+x
    for a y-up or z-up skeleton); a degenerate (vertical) direction is left as it is.
    """
    rotation = normalising_rotation(reference_poses(clip, reference), skeleton, upright, view, reference)
    return (clip @ rotation.T).astype(clip.dtype)


def scale(clip: np.ndarray, factor: float) -> np.ndarray:
    """Multiply every coordinate by ``factor`` (about the origin)."""
    return (clip * factor).astype(clip.dtype)


def _check_range(config_range: tuple[float, float], name: str, positive: bool) -> None:
    low, high = config_range
    if low > high or (positive and low <= 0):
        need = "0 < low <= high" if positive else "low <= high"
        raise ConfigError(f"{name}: expected [low, high] with {need}, got {list(config_range)}")


@dataclass
class ClipPipelineConfig:
    """How one clip becomes a fixed-length training or evaluation sample.

    Attributes:
        num_frames: frames of every output clip.
        sampling: ``resample`` (interpolate the clip, or in training a random sub-window of
            it, to exactly ``num_frames``) or ``crop`` (``num_frames`` consecutive frames,
            random in training, central in evaluation; shorter clips are zero-padded and masked).
        centre: ``none``, ``first_frame`` (subtract the root of the first frame) or
            ``per_frame`` (subtract each frame's root).
        upright: rotate so the trunk points straight up (removes camera pitch and roll).
        view_normalise: rotate about the vertical axis so the body's right-to-left line lies along x.
        view_reference: what ``upright`` and ``view_normalise`` read: ``first_frame`` (the first
            frame's trunk and hip line) or ``clip`` (the trunk averaged over the clip, and every
            left/right joint pair of every frame; :func:`side_direction`).
        rotation_deg: training only: random rotation about the vertical axis in
            ``[-rotation_deg, rotation_deg]`` degrees.
        tilt_deg: training only: random rotation about each horizontal axis in
            ``[-tilt_deg, tilt_deg]`` degrees (camera pitch and roll).
        scale_range: training only: random scale factor in ``[low, high]``.
        speed_range: training only, ``crop`` sampling: random speed factor in ``[low, high]``
            (above 1 is faster). With ``resample`` the window share sets the speed instead.
        window_range: training only, ``resample`` sampling: share of the clip covered by
            the random sub-window, in ``[low, high]`` within ``(0, 1]``.
    """

    num_frames: int = 64
    sampling: Literal["resample", "crop"] = "resample"
    centre: Literal["none", "first_frame", "per_frame"] = "first_frame"
    upright: bool = False
    view_normalise: bool = False
    view_reference: Literal["first_frame", "clip"] = "first_frame"
    rotation_deg: float = 0.0
    tilt_deg: float = 0.0
    scale_range: tuple[float, float] = (1.0, 1.0)
    speed_range: tuple[float, float] = (1.0, 1.0)
    window_range: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.sampling not in ("resample", "crop"):
            raise ConfigError(f"sampling must be 'resample' or 'crop', got {self.sampling!r}")
        if self.centre not in ("none", "first_frame", "per_frame"):
            raise ConfigError(f"centre must be 'none', 'first_frame' or 'per_frame', got {self.centre!r}")
        if self.view_reference not in VIEW_REFERENCES:
            raise ConfigError(f"view_reference must be one of {list(VIEW_REFERENCES)}, got {self.view_reference!r}")
        if self.rotation_deg < 0 or self.tilt_deg < 0:
            raise ConfigError(f"rotation_deg and tilt_deg must be >= 0, got {self.rotation_deg}, {self.tilt_deg}")
        _check_range(self.scale_range, "scale_range", positive=True)
        _check_range(self.speed_range, "speed_range", positive=True)
        _check_range(self.window_range, "window_range", positive=True)
        if self.window_range[1] > 1.0:
            raise ConfigError(f"window_range: the share of the clip cannot exceed 1, got {list(self.window_range)}")
        if self.sampling == "resample" and tuple(self.speed_range) != (1.0, 1.0):
            raise ConfigError("speed_range has no effect with sampling 'resample'; use window_range to vary speed")
        if self.sampling == "crop" and tuple(self.window_range) != (1.0, 1.0):
            raise ConfigError("window_range applies to sampling 'resample' only; use speed_range with 'crop'")


def recognition_pipeline() -> ClipPipelineConfig:
    """The clip pipeline recognizers train with (the co-trained recognizer and the evaluator): 52
    frames resampled from 80-100% windows, centred on the first frame, upright and view-normalised,
    then ±45° random yaw, ±10° tilt and 0.9-1.1 scale; chosen on the view-1 -> 2 fold
    (docs/results.md)."""
    return ClipPipelineConfig(
        num_frames=52, sampling="resample", centre="first_frame", upright=True, view_normalise=True,
        rotation_deg=45.0, tilt_deg=10.0, scale_range=(0.9, 1.1), window_range=(0.8, 1.0))


def prepare_clip(
    clip: np.ndarray,
    skeleton: Skeleton,
    config: ClipPipelineConfig,
    train: bool,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Sample, centre, normalise and (in training) augment one clip.

    Evaluation (``train=False``) is deterministic and never draws from ``rng``.

    Args:
        clip: ``[T, J, 3]`` or ``[T, M, J, 3]``.

    Returns:
        float32 ``[num_frames, ...]`` and the valid length (frames after it are zero padding).
    """
    clip = np.asarray(clip, dtype=np.float32)
    if config.sampling == "resample":
        out = resample(clip, config.num_frames, rng if train else None, config.window_range)
        valid = config.num_frames
    elif train:
        speed = float(rng.uniform(*config.speed_range))
        out, valid = random_crop(change_speed(clip, speed) if speed != 1.0 else clip, config.num_frames, rng)
    else:
        out, valid = center_crop(clip, config.num_frames)
    motion = out[:valid]
    if config.centre != "none":
        motion = centre(motion, skeleton, config.centre)
    if config.upright or config.view_normalise:
        motion = normalise_clip(motion, skeleton, config.upright, config.view_normalise, config.view_reference)
    if train:
        angle = np.deg2rad(rng.uniform(-config.rotation_deg, config.rotation_deg))
        tilts = np.deg2rad(rng.uniform(-config.tilt_deg, config.tilt_deg, size=2)) if config.tilt_deg else None
        factor = float(rng.uniform(*config.scale_range))
        rng.random()  # a draw no longer used, kept so that a seed gives the clips it gave before
        if angle != 0.0:
            motion = rotate_vertical(motion, angle, skeleton.up_axis)
        if tilts is not None:
            up = skeleton.up_axis
            rotation = np.eye(3)
            for tilt, axis in zip(tilts, ((up + 1) % 3, (up + 2) % 3)):
                rotation = rotation @ rotation_about_axis(tilt, axis)
            motion = (motion @ rotation.T).astype(motion.dtype)
        if factor != 1.0:
            motion = scale(motion, factor)
    out[:valid] = motion
    return out, valid
