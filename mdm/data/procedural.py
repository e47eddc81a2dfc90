"""The built-in default dataset: procedural labelled skeleton actions on the Kinect v1 skeleton.

Used when no dataset is named, so that every part of the toolkit runs out of the box. Clips
are built from joint-angle trajectories on a kinematic body (forward kinematics over the
Kinect v1 tree, per-subject bone lengths) and placed like NW-UCLA: camera coordinates in
metres, y up, the body about 3 m in front of the camera along +z, facing it (the performer's
left at -x). Each clip varies in tempo, amplitude, phase, start time, length, style variant
(e.g. arms raised forward or sideways), camera yaw and tilt and position, and carries
Kinect-like sensor noise measured against NW-UCLA. Ten made-up subjects, each with own body,
tempo, habits and handedness (left-handers perform the mirror image), perform every class;
the last three form the test split.

Angles are written in an anatomical convention, the same for both sides of the body:
``flex`` (about the body's lateral axis) is positive for shoulder/hip flexion, knee flexion,
forward bending of spine and head and ankle dorsiflexion; ``abd`` (about the forward axis)
is positive away from the midline; ``twist`` (about the bone) is positive for internal
rotation of a limb. :data:`_ANATOMICAL_SIGN` turns them into rotations about the camera axes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from mdm import ASSETS_DIR
from mdm.data.archive import read_archive, write_archive
from mdm.data.dataset import MotionDataset
from mdm.errors import ConfigError, DataFormatError
from mdm.skeleton import load_skeleton

GENERATOR_VERSION = "procedural-v1"
"""Changes whenever the generator's output changes; part of the source string and cache name."""
FPS = 30.0
DEFAULT_CLIPS_PER_CLASS = 48
DEFAULT_CACHE_DIR = ASSETS_DIR.parent / "datasets" / "procedural"

CLASS_DESCRIPTIONS: dict[str, str] = {
    "wave": "waves one hand above the shoulder, forearm swinging side to side",
    "raise_one_arm": "raises one arm up (forward or sideways) and holds it",
    "punch": "boxing guard, punches forward with alternating arms",
    "clap": "claps both hands in front of the chest",
    "kick": "kicks forward with one leg, standing on the other",
    "jump": "crouches, jumps straight up with an arm swing, lands",
    "squat": "squats down (half or deep; arms forward, on the hips or crossed) and stands up again",
    "bow": "bends the upper body forward from the hips, holds, comes back up",
    "sit_down": "lowers the hips back as onto a chair and stays down",
    "raise_both_arms": "raises both arms above the head (forward or sideways) and holds them",
    "walk_in_place": "marches on the spot, alternating knee lifts, with or without arm swing",
    "turn_around": "turns on the spot by half a turn, stepping",
}
"""Class name -> what the performer does, in class-index order."""
CLASS_NAMES: tuple[str, ...] = tuple(CLASS_DESCRIPTIONS)

_SKELETON = load_skeleton("kinect_v1")
_J = {name: index for index, name in enumerate(_SKELETON.joint_names)}
_SIDES = {"right": "_right", "left": "_left"}

# Rest pose, body frame (x = the performer's right, y up, z backward): unit direction of each
# bone (parent -> joint) and its mean length in metres, close to the NW-UCLA averages.
_REST_BONES: dict[str, tuple[tuple[float, float, float], float]] = {
    "spine": ((0.0, 1.0, 0.0), 0.065),
    "shoulder_center": ((0.0, 1.0, 0.05), 0.31),
    "head": ((0.0, 1.0, -0.12), 0.18),
    "shoulder_left": ((-0.92, -0.38, 0.0), 0.19),
    "shoulder_right": ((0.92, -0.38, 0.0), 0.19),
    "elbow_left": ((0.0, -1.0, 0.0), 0.25),
    "elbow_right": ((0.0, -1.0, 0.0), 0.25),
    "wrist_left": ((0.0, -1.0, 0.0), 0.22),
    "wrist_right": ((0.0, -1.0, 0.0), 0.22),
    "hand_left": ((0.0, -1.0, 0.0), 0.075),
    "hand_right": ((0.0, -1.0, 0.0), 0.075),
    "hip_left": ((-0.75, -0.66, 0.0), 0.105),
    "hip_right": ((0.75, -0.66, 0.0), 0.105),
    "knee_left": ((0.0, -1.0, 0.0), 0.45),
    "knee_right": ((0.0, -1.0, 0.0), 0.45),
    "ankle_left": ((0.0, -1.0, 0.0), 0.37),
    "ankle_right": ((0.0, -1.0, 0.0), 0.37),
    "foot_left": ((0.0, -0.35, -1.0), 0.085),
    "foot_right": ((0.0, -0.35, -1.0), 0.085),
}


def _anatomical_sign() -> np.ndarray:
    """float ``[J, 3]``: multiplies (flex, abd, twist) into rotations about (x, z, y) of the camera."""
    sign = np.ones((_SKELETON.num_joints, 3))
    for name in ("spine", "shoulder_center", "head", "ankle_left", "ankle_right"):
        sign[_J[name], 0] = -1.0  # bending forward, and knee flexion (the shin), turn the bone back about +x
    for name, index in _J.items():
        if name.endswith("_left"):
            sign[index, 1:] *= -1.0  # the left side mirrors abduction and twist
    return sign


_ANATOMICAL_SIGN = _anatomical_sign()
_MIRROR = _SKELETON.mirror_permutation
_FEET = np.array([_J["ankle_left"], _J["foot_left"], _J["ankle_right"], _J["foot_right"]])
_EXTREMITIES = np.array([_J["hand_left"], _J["hand_right"], _J["foot_left"], _J["foot_right"]])
_NOISE_SCALE = {"elbow": 1.8, "wrist": 3.0, "hand": 3.5, "ankle": 0.6, "foot": 1.1}
"""Sensor noise of limb joints relative to the trunk, as measured on NW-UCLA (hands jitter most)."""
_SPIKE_SCALE = 17.0
"""Size of the occasional tracking spikes on hands and feet relative to the trunk noise (6 cm at default)."""
_ARM_POSES: dict[str, tuple[float, float, float, float]] = {
    "forward": (85.0, 5.0, 0.0, 10.0),
    "hips": (-10.0, 45.0, 75.0, 95.0),
    "crossed": (30.0, -10.0, 70.0, 120.0),
    "thighs": (35.0, 5.0, 0.0, 45.0),
    "hanging": (5.0, 5.0, 0.0, 10.0),
    "clasped": (0.0, -12.0, 30.0, 20.0),
}
"""Arm postures held during whole-body actions: (shoulder flex, abd, twist, elbow) in degrees."""


@dataclass
class _Subjects:
    """Per-subject body and style. Index 0 is subject id 1."""

    bone_lengths: np.ndarray  # [S, J] metres, 0 for the root
    left_handed: np.ndarray  # bool [S]
    tempo: np.ndarray  # [S] multiplies movement speed
    amplitude: np.ndarray  # [S] multiplies movement size
    habit: np.ndarray  # [S, 3] the variant numbers a subject uses in most clips
    style: np.ndarray  # [S, J, 3] degrees, resting posture offsets (anatomical)


@dataclass
class _Clips:
    """Per-clip parameters and the motion being built, for ``n`` clips padded to ``T`` frames.

    ``t``: [n, T] seconds since the action started (negative before it); ``s``: [n, T] phase of
    a one-off action, 0 at its start and 1 at its end; ``duration``: [n] seconds the action
    takes; ``tempo``, ``amp``, ``phase`` [n]; ``variant`` [n, 3] uniform numbers for choices
    (column 0: frequency or style, 1: repetitions or ending, 2: arm posture).
    ``angles`` [n, T, J, 3] degrees (anatomical), ``yaw`` [n, T] degrees of turning,
    ``lift`` [n, T] metres of flight above the floor: what the class functions write.
    """

    t: np.ndarray
    s: np.ndarray
    duration: np.ndarray
    tempo: np.ndarray
    amp: np.ndarray
    phase: np.ndarray
    variant: np.ndarray
    angles: np.ndarray
    yaw: np.ndarray
    lift: np.ndarray

    def add(self, joint: str, flex: np.ndarray | float = 0.0, abd: np.ndarray | float = 0.0,
            twist: np.ndarray | float = 0.0) -> None:
        """Add angles ``[n, T]`` (or scalars) in degrees to the rotation of the bone ending at ``joint``."""
        index = _J[joint]
        self.angles[:, :, index, 0] += flex
        self.angles[:, :, index, 1] += abd
        self.angles[:, :, index, 2] += twist

    def arm(self, side: str, flex: np.ndarray | float = 0.0, abd: np.ndarray | float = 0.0,
            twist: np.ndarray | float = 0.0, elbow: np.ndarray | float = 0.0) -> None:
        """Shoulder angles and elbow flexion of the ``right`` (dominant) or ``left`` arm."""
        self.add("elbow" + _SIDES[side], flex, abd, twist)
        self.add("wrist" + _SIDES[side], flex=elbow)

    def leg(self, side: str, hip: np.ndarray | float = 0.0, knee: np.ndarray | float = 0.0,
            plantar: np.ndarray | float = 0.0) -> None:
        """Hip and knee flexion; the ankle keeps the foot level unless ``plantar`` > 0."""
        self.add("knee" + _SIDES[side], flex=hip)
        self.add("ankle" + _SIDES[side], flex=knee)
        self.add("foot" + _SIDES[side], flex=np.asarray(knee) - np.asarray(hip) - np.asarray(plantar))

    def spine(self, flex: np.ndarray | float = 0.0, lateral: np.ndarray | float = 0.0,
              twist: np.ndarray | float = 0.0) -> None:
        """Bend the trunk forward, sideways or twist it, shared 60/40 by the lower and upper spine."""
        self.add("spine", 0.6 * np.asarray(flex), 0.6 * np.asarray(lateral), 0.6 * np.asarray(twist))
        self.add("shoulder_center", 0.4 * np.asarray(flex), 0.4 * np.asarray(lateral), 0.4 * np.asarray(twist))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, smooth (zero slope at both ends) in between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _keyframes(s: np.ndarray, times: tuple[float, ...], values: tuple[float, ...]) -> np.ndarray:
    """Smooth piecewise interpolation of ``values`` at phases ``times``, held before and after.

    Args:
        s: ``[...]`` phase. times: ``K`` increasing phases. values: ``K`` values.
    Returns:
        ``[...]`` interpolated values, with zero slope at every key.
    """
    times_a = np.asarray(times, dtype=np.float64)
    values_a = np.asarray(values, dtype=np.float64)
    segment = np.clip(np.searchsorted(times_a, s, side="right") - 1, 0, len(times_a) - 2)
    u = _smoothstep((s - times_a[segment]) / (times_a[segment + 1] - times_a[segment]))
    return values_a[segment] + (values_a[segment + 1] - values_a[segment]) * u


def _col(values: np.ndarray) -> np.ndarray:
    """``[n]`` -> ``[n, 1]``, to broadcast a per-clip value over frames."""
    return values[:, None]


def _repeat(c: _Clips, max_reps: int, min_rep_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Phase ``[n, T]`` running 0 -> 1 once per repetition, then held at 1; and repetitions ``[n]``.

    A clip repeats its action 1 to ``max_reps`` times, as many as fit ``min_rep_seconds`` each.
    """
    fits = np.floor(c.duration / min_rep_seconds).clip(1, max_reps)
    reps = 1 + np.floor(c.variant[:, 1] * fits)
    phase = np.where(c.s >= 1.0, 1.0, (c.s * _col(reps)) % 1.0)
    return phase, reps


def _oscillation(c: _Clips, low_hz: float, high_hz: float, offset: float = 0.0) -> np.ndarray:
    """``[n, T]`` sine with a per-clip frequency in ``[low_hz, high_hz]`` (times the tempo) and phase."""
    hz = (low_hz + (high_hz - low_hz) * c.variant[:, 0]) * c.tempo
    return np.sin(2.0 * np.pi * _col(hz) * c.t + _col(c.phase) + offset)


def _onset(c: _Clips, seconds: float = 0.4) -> np.ndarray:
    """``[n, T]`` envelope rising from 0 to 1 over the first ``seconds`` of the action."""
    return _smoothstep(c.t * _col(c.tempo) / seconds)


def _hold_arms(c: _Clips, postures: tuple[str, ...], weight: np.ndarray) -> None:
    """Both arms take one of ``postures`` (chosen per clip) to the extent ``weight`` ``[n, T]`` in [0, 1]."""
    table = np.array([_ARM_POSES[name] for name in postures])
    chosen = table[np.minimum((c.variant[:, 2] * len(postures)).astype(np.int64), len(postures) - 1)]
    for side in ("right", "left"):
        c.arm(side, *(_col(chosen[:, k]) * weight for k in range(4)))


def _wave(c: _Clips) -> None:
    up = _onset(c)
    swing = _oscillation(c, 1.5, 2.6)
    abd = 95 + 20 * c.variant[:, 1:2]
    c.arm("right", flex=15 * up, abd=abd * up, twist=-90 * up, elbow=(180 - abd + 28 * _col(c.amp) * swing) * up)
    c.add("hand_right", flex=20 * swing * up)


def _raise(c: _Clips, sides: tuple[str, ...]) -> None:
    """Raise the arms of ``sides`` forward or sideways (per clip) to 150-180 deg; some lower them at the end."""
    lower = _col((c.variant[:, 1] > 0.5).astype(np.float64))
    hold = _keyframes(c.s, (0.0, 0.35, 0.8, 1.0), (0.0, 1.0, 1.0, 1.0)) - lower * _smoothstep((c.s - 0.8) / 0.2)
    height = 150 + 25 * np.clip(_col(c.amp), 0.0, 1.2)
    sideways = _col((c.variant[:, 0] > 0.5).astype(np.float64))
    for side in sides:
        c.arm(side, flex=hold * (height * (1 - sideways) + 15 * sideways),
              abd=hold * (15 * (1 - sideways) + 0.9 * height * sideways), twist=-90 * hold * sideways,
              elbow=hold * (10 - 5 * sideways))


def _raise_one_arm(c: _Clips) -> None:
    _raise(c, ("right",))


def _raise_both_arms(c: _Clips) -> None:
    _raise(c, ("right", "left"))


def _punch(c: _Clips) -> None:
    guard = _onset(c, 0.3)
    strikes = {side: guard * np.maximum(0.0, _oscillation(c, 0.9, 1.5, offset)) ** 2
               for side, offset in (("right", 0.0), ("left", np.pi))}
    for side, strike in strikes.items():
        c.arm(side, flex=25 * guard + 60 * _col(c.amp) * strike, abd=20 * guard - 15 * strike,
              twist=10 * guard, elbow=125 * guard - 115 * strike)
    c.spine(flex=8 * guard, twist=15 * (strikes["right"] - strikes["left"]))


def _clap(c: _Clips) -> None:
    pose = _onset(c)
    close = 0.5 + 0.5 * _oscillation(c, 1.8, 2.8)
    for side in ("right", "left"):
        c.arm(side, flex=55 * pose, abd=pose * (33 * _col(c.amp) * (1 - close) - 8), twist=30 * pose, elbow=80 * pose)


def _kick(c: _Clips) -> None:
    s, _ = _repeat(c, 2, 1.1)
    times = (0.0, 0.3, 0.45, 0.65, 0.9)
    c.leg("right", hip=_col(c.amp) * _keyframes(s, times, (0, 60, 85, 55, 0)),
          knee=_keyframes(s, times, (0, 95, 10, 80, 0)), plantar=_keyframes(s, times, (0, 10, 35, 10, 0)))
    balance = _keyframes(s, times, (0, 1, 1, 1, 0))
    c.leg("left", hip=4 * balance, knee=8 * balance)
    c.spine(flex=-12 * balance)
    c.arm("right", abd=25 * balance, elbow=30 * balance)
    c.arm("left", flex=20 * balance, abd=25 * balance, elbow=30 * balance)


def _jump(c: _Clips) -> None:
    s, reps = _repeat(c, 2, 1.1)
    times = (0.0, 0.25, 0.38, 0.48, 0.72, 0.84, 1.0)
    hip = _col(c.amp) * _keyframes(s, times, (0, 45, 45, 0, 0, 35, 0))
    knee = _col(c.amp) * _keyframes(s, times, (0, 75, 75, 0, 5, 60, 0))
    plantar = _keyframes(s, times, (0, 0, 0, 35, 20, 0, 0))
    arms = _keyframes(s, times, (0, -35, -40, 150, 110, 10, 0))
    for side in ("right", "left"):
        c.leg(side, hip=hip, knee=knee, plantar=plantar)
        c.arm(side, flex=arms, abd=10, elbow=15)
    c.spine(flex=_keyframes(s, times, (0, 25, 25, 0, 0, 15, 0)))
    flight_seconds = 0.24 * c.duration / reps
    height = np.clip(9.81 * flight_seconds**2 / 8.0, 0.08, 0.35) * c.amp
    u = (s - 0.48) / 0.24
    c.lift += _col(height) * np.where((u > 0) & (u < 1), 4.0 * u * (1.0 - u), 0.0)


def _squat(c: _Clips) -> None:
    s, _ = _repeat(c, 2, 1.4)
    depth = _col((0.55 + 0.45 * c.variant[:, 0]) * c.amp) * _keyframes(s, (0.0, 0.45, 0.6, 1.0), (0, 1, 1, 0))
    for side in ("right", "left"):
        c.leg(side, hip=95 * depth, knee=120 * depth)
    _hold_arms(c, ("forward", "hips", "crossed"), depth)
    c.spine(flex=35 * depth)
    c.add("head", flex=-20 * depth)


def _sit_down(c: _Clips) -> None:
    down = _keyframes(c.s, (0.0, 0.55), (0, 1))
    seat = _col(0.8 + 0.3 * c.variant[:, 1])
    for side in ("right", "left"):
        c.leg(side, hip=85 * seat * down, knee=90 * seat * down)
    _hold_arms(c, ("thighs", "crossed", "hanging"), down)
    c.spine(flex=_keyframes(c.s, (0.0, 0.3, 0.55, 0.8), (0, 35, 20, 8)))


def _bow(c: _Clips) -> None:
    depth = _keyframes(c.s, (0.0, 0.35, 0.6, 0.95), (0, 1, 1, 0)) * _col(np.minimum((25 + 45 * c.variant[:, 0]) * c.amp, 80.0))
    c.spine(flex=depth)
    c.add("head", flex=0.25 * depth)
    for side in ("right", "left"):
        c.arm(side, flex=0.8 * depth)
    _hold_arms(c, ("hanging", "clasped"), depth / depth.max(axis=1, keepdims=True).clip(1e-6))


def _walk_in_place(c: _Clips) -> None:
    go = _onset(c, 0.3)
    stride = _oscillation(c, 0.75, 1.05) * go
    knee_lift = _col((0.5 + 0.6 * c.variant[:, 1]) * c.amp)
    arm_swing = _col(35 * c.variant[:, 2] * c.amp)
    for side, sign in (("right", 1.0), ("left", -1.0)):
        lift = np.maximum(0.0, sign * stride) * knee_lift
        c.leg(side, hip=45 * lift, knee=75 * lift, plantar=10 * lift)
        c.arm(side, flex=-sign * stride * arm_swing, elbow=25 * go)


def _turn_around(c: _Clips) -> None:
    direction = np.where(c.variant[:, 1] > 0.5, 1.0, -1.0)
    c.yaw += _col(direction * (150 + 50 * c.variant[:, 0])) * _keyframes(c.s, (0.1, 0.85), (0, 1))
    stepping = _keyframes(c.s, (0.05, 0.15, 0.8, 0.9), (0, 1, 1, 0))
    stride = _oscillation(c, 1.2, 1.8) * stepping
    for side, sign in (("right", 1.0), ("left", -1.0)):
        lift = np.maximum(0.0, sign * stride)
        c.leg(side, hip=25 * lift, knee=45 * lift)
        c.arm(side, flex=-12 * sign * stride, abd=8 * stepping, elbow=20 * stepping)


_MOTIONS = {
    "wave": _wave,
    "raise_one_arm": _raise_one_arm,
    "punch": _punch,
    "clap": _clap,
    "kick": _kick,
    "jump": _jump,
    "squat": _squat,
    "bow": _bow,
    "sit_down": _sit_down,
    "raise_both_arms": _raise_both_arms,
    "walk_in_place": _walk_in_place,
    "turn_around": _turn_around,
}


def _make_subjects(rng: np.random.Generator, num_subjects: int, num_test: int) -> _Subjects:
    """Bodies and styles of the performers; one train and one test subject are left-handed."""
    num_joints = _SKELETON.num_joints
    mean_length = np.zeros(num_joints)
    for name, (_, length) in _REST_BONES.items():
        mean_length[_J[name]] = length
    scale = rng.uniform(0.88, 1.12, (num_subjects, 1))
    per_bone = rng.normal(1.0, 0.04, (num_subjects, num_joints))
    per_bone = 0.5 * (per_bone + per_bone[:, _MIRROR])  # left and right limbs of a body match
    left_handed = np.zeros(num_subjects, dtype=bool)
    left_handed[rng.integers(0, num_subjects - num_test)] = True
    left_handed[num_subjects - num_test + rng.integers(0, num_test)] = True

    style = np.zeros((num_subjects, num_joints, 3))
    for side in ("_left", "_right"):
        style[:, _J["elbow" + side], 1] = rng.uniform(5, 14, num_subjects)  # arms held slightly out
        style[:, _J["wrist" + side], 0] = rng.uniform(5, 20, num_subjects)  # elbows slightly bent
        style[:, _J["foot" + side], 2] = rng.uniform(-15, -3, num_subjects)  # toes out
    style[:, _J["spine"], 0] = rng.uniform(-3, 6, num_subjects)
    style[:, _J["head"], 0] = rng.uniform(0, 10, num_subjects)
    style[:, _J["foot_left"], 2] = style[:, _J["foot_right"], 2]
    return _Subjects(
        bone_lengths=mean_length * scale * per_bone,
        left_handed=left_handed,
        tempo=rng.uniform(0.85, 1.15, num_subjects),
        amplitude=rng.uniform(0.8, 1.15, num_subjects),
        habit=rng.random((num_subjects, 3)),
        style=style,
    )


def _unit_bones() -> np.ndarray:
    """float ``[J, 3]`` rest direction of each bone (zero for the root)."""
    unit = np.zeros((_SKELETON.num_joints, 3))
    for name, (direction, _) in _REST_BONES.items():
        unit[_J[name]] = np.asarray(direction) / np.linalg.norm(direction)
    return unit


def _rotations(angles: np.ndarray) -> np.ndarray:
    """``[..., 3]`` radians about (x, z, y) -> ``[3, 3, ...]`` matrices ``Rx @ Rz @ Ry`` (closed form).

    The matrix indices come first so that products run over long contiguous arrays.
    """
    cx, sx = np.cos(angles[..., 0]), np.sin(angles[..., 0])
    cz, sz = np.cos(angles[..., 1]), np.sin(angles[..., 1])
    cy, sy = np.cos(angles[..., 2]), np.sin(angles[..., 2])
    return np.stack([
        np.stack([cz * cy, -sz, cz * sy]),
        np.stack([cx * sz * cy + sx * sy, cx * cz, cx * sz * sy - sx * cy]),
        np.stack([sx * sz * cy - cx * sy, sx * cz, sx * sz * sy + cx * cy]),
    ])


def _matmul3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Matrix product of ``[3, 3, ...]`` stacks, element by element over ``...``."""
    return a[:, 0, None] * b[None, 0] + a[:, 1, None] * b[None, 1] + a[:, 2, None] * b[None, 2]


def _forward_kinematics(angles: np.ndarray, yaw: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Joint positions relative to the root.

    Args:
        angles: ``[n, T, J, 3]`` degrees, anatomical (flex, abd, twist) of the bone ending at each joint.
        yaw: ``[n, T]`` degrees, the body's rotation about the vertical axis.
        offsets: ``[n, J, 3]`` rest bone vectors (direction times length) in the body frame.
    Returns:
        ``[n, T, J, 3]`` positions, root at the origin.
    """
    joint_major = np.ascontiguousarray(np.moveaxis(np.radians(angles * _ANATOMICAL_SIGN), 2, 0))  # [J, n, T, 3]
    yaw_angles = np.zeros(yaw.shape + (3,))
    yaw_angles[..., 2] = np.radians(yaw)
    glob = {_SKELETON.root: _rotations(yaw_angles)}  # joint -> [3, 3, n, T]
    positions = np.zeros((_SKELETON.num_joints, 3) + yaw.shape)
    for joint in _SKELETON.topological_order[1:]:
        parent = _SKELETON.parents[joint]
        glob[joint] = _matmul3(glob[parent], _rotations(joint_major[joint]))
        bone = offsets[:, joint].T[None, :, :, None]  # [1, 3, n, 1]
        positions[joint] = positions[parent] + (glob[joint] * bone).sum(axis=1)
    return np.moveaxis(positions, (0, 1), (2, 3))


def _place_on_floor(positions: np.ndarray, lift: np.ndarray, stand: np.ndarray) -> np.ndarray:
    """Translate each frame so the supporting foot rests on the floor at the clip's standing point.

    Args:
        positions: ``[n, T, J, 3]`` relative to the root. lift: ``[n, T]`` metres of flight.
        stand: ``[n, 3]`` (x, floor height, z) of where the performer stands.
    Returns:
        ``[n, T, J, 3]`` positions in camera coordinates.
    """
    feet = positions[:, :, _FEET]
    lowest = feet[..., 1].min(axis=-1)
    side_low = feet[..., 1].reshape(feet.shape[:2] + (2, 2)).min(axis=-1)  # [n, T, (left, right)]
    weight = np.exp(-(side_low - lowest[..., None]) / 0.04)
    weight /= weight.sum(axis=-1, keepdims=True)
    ankles = feet[:, :, [0, 2]]
    anchor = (weight[..., None] * ankles).sum(axis=2)
    shift = np.stack([stand[:, None, 0] - anchor[..., 0], stand[:, None, 1] - lowest + lift,
                      stand[:, None, 2] - anchor[..., 2]], axis=-1)
    return positions + shift[:, :, None, :]


def _sensor_noise(rng: np.random.Generator, shape: tuple[int, ...], noise_std: float) -> np.ndarray:
    """``[n, T, J, 3]`` Kinect-like noise: Gaussian jitter (``noise_std`` on the trunk, more on hands)
    plus 1-3 frame spikes on hands and feet."""
    scale = np.array([_NOISE_SCALE.get(name.split("_")[0], 1.0) for name in _SKELETON.joint_names])
    noise = rng.normal(0.0, 1.0, shape) * (noise_std * scale)[:, None]
    n, frames = shape[:2]
    starts = rng.random((n, frames, len(_EXTREMITIES))) < 0.01
    jumps = rng.normal(0.0, _SPIKE_SCALE * noise_std, (n, frames, len(_EXTREMITIES), 3)) * starts[..., None]
    durations = rng.integers(1, 4, (n, frames, len(_EXTREMITIES)))
    spikes = np.zeros_like(jumps)
    for k in range(3):
        spikes[:, k:] += (jumps * (durations > k)[..., None])[:, : frames - k]
    noise[:, :, _EXTREMITIES] += spikes
    return noise


def _check_options(clips_per_class: int, num_subjects: int, num_test_subjects: int, min_frames: int,
                   max_frames: int, max_yaw_deg: float, max_pitch_deg: float, noise_std: float) -> None:
    problems = [
        (clips_per_class >= 1, f"clips_per_class must be >= 1, got {clips_per_class}"),
        (1 <= num_test_subjects < num_subjects,
         f"need 1 <= num_test_subjects < num_subjects, got {num_test_subjects} and {num_subjects}"),
        (2 <= min_frames <= max_frames, f"need 2 <= min_frames <= max_frames, got {min_frames} and {max_frames}"),
        (0.0 <= max_yaw_deg <= 180.0, f"max_yaw_deg must lie in [0, 180], got {max_yaw_deg}"),
        (0.0 <= max_pitch_deg <= 30.0, f"max_pitch_deg must lie in [0, 30], got {max_pitch_deg}"),
        (noise_std >= 0.0, f"noise_std must be >= 0, got {noise_std}"),
    ]
    for ok, problem in problems:
        if not ok:
            raise ConfigError(f"procedural dataset: {problem}")


def _draw_clips(rng: np.random.Generator, subjects: _Subjects, labels: np.ndarray, subject: np.ndarray,
                lengths: np.ndarray, max_frames: int) -> _Clips:
    """Timing and style of every clip, with an empty motion for the class functions to fill."""
    n = len(labels)
    clip_seconds = lengths / FPS
    start = rng.uniform(0.0, 1.0, n) * np.minimum(0.5, 0.25 * clip_seconds)
    duration = (clip_seconds - start) * rng.uniform(0.6, 1.0, n)
    t = np.arange(max_frames) / FPS - start[:, None]
    return _Clips(
        t=t,
        s=np.clip(t / duration[:, None], 0.0, 1.0),
        duration=duration,
        tempo=rng.uniform(0.85, 1.2, n) * subjects.tempo[subject],
        amp=rng.uniform(0.85, 1.15, n) * subjects.amplitude[subject],
        phase=rng.uniform(0.0, 2.0 * np.pi, n),
        variant=np.where(rng.random((n, 3)) < 0.6, subjects.habit[subject], rng.random((n, 3))),
        angles=np.zeros((n, max_frames, _SKELETON.num_joints, 3)),
        yaw=np.zeros((n, max_frames)),
        lift=np.zeros((n, max_frames)),
    )


def _perform(clips: _Clips, labels: np.ndarray, left_handed: np.ndarray) -> None:
    """Fill ``clips`` with each class's motion; left-handed performers do the mirror image."""
    for label, name in enumerate(CLASS_NAMES):
        chosen = labels == label
        part = _Clips(*(getattr(clips, field.name)[chosen] for field in fields(_Clips)))
        _MOTIONS[name](part)
        clips.angles[chosen], clips.yaw[chosen], clips.lift[chosen] = part.angles, part.yaw, part.lift
    central = np.flatnonzero(_MIRROR == np.arange(_SKELETON.num_joints))
    mirrored = clips.angles[left_handed][:, :, _MIRROR]
    mirrored[:, :, central, 1:] *= -1.0
    clips.angles[left_handed] = mirrored
    clips.yaw[left_handed] *= -1.0


def _idle_sway(rng: np.random.Generator, n: int, max_frames: int) -> np.ndarray:
    """``[n, T, J, 3]`` degrees of slow, small, random trunk, head and arm movement."""
    sway_deg = np.zeros((_SKELETON.num_joints, 1))
    for name, degrees in (("spine", 2), ("shoulder_center", 2), ("head", 5), ("elbow_left", 4),
                          ("elbow_right", 4), ("wrist_left", 5), ("wrist_right", 5)):
        sway_deg[_J[name]] = degrees
    hz = rng.uniform(0.1, 0.5, (n, 1, _SKELETON.num_joints, 3))
    phase = rng.uniform(0.0, 2.0 * np.pi, (n, 1, _SKELETON.num_joints, 3))
    seconds = (np.arange(max_frames) / FPS)[None, :, None, None]
    return sway_deg * np.sin(2.0 * np.pi * hz * seconds + phase)


def _drift(rng: np.random.Generator, n: int, max_frames: int) -> np.ndarray:
    """``[n, T, 1, 3]`` metres of slow horizontal swaying of the whole body (up to 1.5 cm)."""
    seconds = (np.arange(max_frames) / FPS)[None, :, None]
    drift = 0.015 * np.sin(2.0 * np.pi * rng.uniform(0.1, 0.4, (n, 1, 3)) * seconds
                           + rng.uniform(0.0, 2.0 * np.pi, (n, 1, 3)))
    drift[..., 1] = 0.0
    return drift[:, :, None, :]


def _tilt(positions: np.ndarray, pitch_deg: np.ndarray) -> np.ndarray:
    """Rotate ``[n, T, J, 3]`` camera coordinates about the camera's x axis by ``[n]`` degrees."""
    angles = np.zeros((len(pitch_deg), 3))
    angles[:, 0] = np.radians(pitch_deg)
    return np.einsum("abn,ntjb->ntja", _rotations(angles), positions)


def generate_procedural_dataset(
    seed: int = 0,
    clips_per_class: int = DEFAULT_CLIPS_PER_CLASS,
    num_subjects: int = 10,
    num_test_subjects: int = 3,
    min_frames: int = 40,
    max_frames: int = 80,
    max_yaw_deg: float = 45.0,
    max_pitch_deg: float = 8.0,
    noise_std: float = 0.0035,
) -> MotionDataset:
    """Generate the procedural dataset of :data:`CLASS_NAMES` on the Kinect v1 skeleton.

    Args:
        seed: the same seed gives identical arrays.
        clips_per_class: clips of each class, spread evenly over the subjects.
        num_subjects: made-up performers (ids 1..S), each with own bone lengths, tempo and style.
        num_test_subjects: the last ones form the ``test`` split, the others ``train``.
        min_frames, max_frames: range of clip lengths at 30 fps.
        max_yaw_deg: camera yaw drawn in ``[-max, max]``; ``views`` 1/2/3 are its thirds.
        max_pitch_deg: camera tilt drawn in ``[-max, max]`` (the floor is level only at 0).
        noise_std: metres of Gaussian sensor noise on trunk joints; hands get 3.5 times as much,
            and occasional spikes on hands and feet (17 times as large) come on top; 0 for clean data.

    Returns:
        A dataset of float32 clips ``[T, 20, 3]`` in metres, camera coordinates, y up.
    """
    _check_options(clips_per_class, num_subjects, num_test_subjects, min_frames, max_frames, max_yaw_deg,
                   max_pitch_deg, noise_std)
    rng = np.random.default_rng(seed)
    subjects = _make_subjects(rng, num_subjects, num_test_subjects)
    num_classes = len(CLASS_NAMES)
    n = num_classes * clips_per_class
    labels = np.repeat(np.arange(num_classes), clips_per_class)
    episode, subject = np.divmod(np.tile(np.arange(clips_per_class), num_classes), num_subjects)
    lengths = rng.integers(min_frames, max_frames + 1, n)
    yaw_draw = rng.random(n)
    camera_yaw = (2.0 * yaw_draw - 1.0) * max_yaw_deg
    camera_pitch = rng.uniform(-max_pitch_deg, max_pitch_deg, n)
    stand = np.stack([rng.uniform(-0.5, 0.5, n), rng.uniform(-0.8, -0.55, n), rng.uniform(2.5, 3.4, n)], axis=-1)

    clips = _draw_clips(rng, subjects, labels, subject, lengths, max_frames)
    _perform(clips, labels, subjects.left_handed[subject])
    angles = clips.angles + subjects.style[subject][:, None] + _idle_sway(rng, n, max_frames)
    offsets = _unit_bones()[None] * subjects.bone_lengths[subject][..., None]
    positions = _forward_kinematics(angles, camera_yaw[:, None] + clips.yaw, offsets)
    positions = _place_on_floor(positions, clips.lift, stand) + _drift(rng, n, max_frames)
    positions = _tilt(positions, camera_pitch)
    positions += _sensor_noise(rng, positions.shape, noise_std)

    views = 1 + np.minimum((3.0 * yaw_draw).astype(np.int64), 2)
    subject_ids = subject + 1
    return MotionDataset(
        clips=[positions[i, : lengths[i]].astype(np.float32) for i in range(n)],
        labels=labels,
        class_names=list(CLASS_NAMES),
        skeleton=_SKELETON,
        subjects=subject_ids,
        views=views,
        clip_ids=[f"proc_a{labels[i]:02d}_s{subject_ids[i]:02d}_e{episode[i]:02d}_v{views[i]:02d}" for i in range(n)],
        split=np.where(subject_ids > num_subjects - num_test_subjects, "test", "train"),
        fps=FPS,
        source=f"{GENERATOR_VERSION} seed={seed}",
    )


def cache_path(cache_dir: Path, seed: int) -> Path:
    """Where :func:`load_default_dataset` keeps the dataset of ``seed``; the name carries the generator version."""
    return Path(cache_dir) / f"{GENERATOR_VERSION.replace('-', '_')}_seed{seed}.npz"


def load_default_dataset(cache_dir: Path = DEFAULT_CACHE_DIR, seed: int = 0) -> MotionDataset:
    """The default dataset: read from the cache, or generated and cached as a motion archive.

    A cached file that cannot be read, or that another generator version wrote, is regenerated.
    """
    path = cache_path(cache_dir, seed)
    expected_source = f"{GENERATOR_VERSION} seed={seed}"
    if path.is_file():
        try:
            cached = read_archive(path)
        except DataFormatError:
            cached = None
        if cached is not None and cached.source == expected_source:
            return cached
    dataset = generate_procedural_dataset(seed=seed)
    write_archive(dataset, path)
    return dataset


def _resampled_features(dataset: MotionDataset, num_frames: int) -> np.ndarray:
    """``[N, num_frames * J * 3]``: each clip root-centred per frame and linearly resampled in time."""
    root = dataset.skeleton.root
    features = []
    for clip in dataset.clips:
        centred = clip - clip[..., root: root + 1, :]
        position = np.linspace(0.0, len(clip) - 1, num_frames)
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, len(clip) - 1)
        weight = (position - low).reshape((-1,) + (1,) * (clip.ndim - 1))
        features.append(((1.0 - weight) * centred[low] + weight * centred[high]).reshape(-1))
    return np.stack(features)


def nearest_centroid_accuracy(train: MotionDataset, test: MotionDataset, num_frames: int = 32) -> float:
    """Top-1 accuracy on ``test`` of a nearest-class-mean classifier fitted on ``train``.

    Features are raw coordinates, root-centred per frame and resampled to ``num_frames``;
    a baseline that says how hard a dataset is for a model that learns nothing.
    """
    if len(train) == 0 or len(test) == 0:
        raise ValueError("nearest_centroid_accuracy needs clips in both train and test")
    train_x = _resampled_features(train, num_frames)
    test_x = _resampled_features(test, num_frames)
    classes = np.unique(train.labels)
    centroids = np.stack([train_x[train.labels == k].mean(axis=0) for k in classes])
    distances = ((test_x[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    return float(np.mean(classes[distances.argmin(axis=1)] == test.labels))
