"""SMPL body meshes of rotation-parameterised clips: build with smplx, export with trimesh, render shaded.

The SMPL model files are licensed and never shipped: the user points ``smpl_dir`` at them
(``<dir>/SMPL_NEUTRAL.pkl`` or smplx's layout ``<dir>/smpl/SMPL_NEUTRAL.pkl``; the lookup is
:func:`mdm.kinematics.find_smpl_model_file`). Meshes use the mean shape (betas zero) and
smplx's linear blend skinning; the mesh is placed so that its root joint lies at the clip's
root translation, as in :func:`mdm.kinematics.forward_kinematics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.artist import Artist
from mpl_toolkits.mplot3d import Axes3D
from mpl_toolkits.mplot3d.art3d import Poly3DCollection

from mdm.errors import ConfigError, UserError
from mdm.kinematics import load_smpl_model
from mdm.render.figure import Bounds, Panel, View, camera_direction, facing_azimuth, iter_frames, to_plot
from mdm.render.video import DEFAULT_FPS, check_video_path, write_video
from mdm.rotations import rotation_6d_to_matrix
from mdm.skeleton import Skeleton, load_skeleton

MESH_FORMATS = ("ply", "obj")
BODY_COLOUR = np.array([0.62, 0.72, 0.86])
AMBIENT = 0.35
"""Lambert shading: face brightness is ``AMBIENT + (1 - AMBIENT) * |normal . light|``."""
_FRAMES_PER_BATCH = 64


@dataclass
class MeshSequence:
    """A mesh moving over a clip.

    Attributes:
        vertices: float32 ``[T, V, 3]``.
        faces: int64 ``[F, 3]`` vertex indices of triangles.
        up_axis: the vertices' up axis (1 = y for SMPL).
        joints: optional float32 ``[T, J, 3]`` joints of ``skeleton`` (to face the camera to the body).
        skeleton: the skeleton of ``joints``, or None.
    """

    vertices: np.ndarray
    faces: np.ndarray
    up_axis: int = 1
    joints: np.ndarray | None = None
    skeleton: Skeleton | None = None

    def __post_init__(self) -> None:
        self.vertices = np.asarray(self.vertices, dtype=np.float32)
        self.faces = np.asarray(self.faces, dtype=np.int64)
        if self.vertices.ndim != 3 or self.vertices.shape[-1] != 3 or len(self.vertices) == 0:
            raise ValueError(f"vertices must be [T, V, 3] with T >= 1, got {list(self.vertices.shape)}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or len(self.faces) == 0:
            raise ValueError(f"faces must be [F, 3] with F >= 1, got {list(self.faces.shape)}")
        if self.faces.min() < 0 or self.faces.max() >= self.vertices.shape[1]:
            raise ValueError(f"faces index vertices outside [0, {self.vertices.shape[1]})")
        if (self.joints is None) != (self.skeleton is None):
            raise ValueError("joints and skeleton come together")


class SmplBody:
    """The mean-shape SMPL body of the user's model file, posed by local joint rotations.

    Args:
        smpl_dir: folder with ``SMPL_<GENDER>.pkl`` directly or in ``smpl/``.
        gender: ``neutral``, ``male`` or ``female``.

    Raises:
        UserError: the model file is missing (the message says where to put it).
        DataFormatError: the file is not a SMPL model.
    """

    def __init__(self, smpl_dir: str | Path, gender: str = "neutral") -> None:
        self.model = load_smpl_model(smpl_dir, gender)
        self.skeleton = load_skeleton("smpl_24")

    @property
    def faces(self) -> np.ndarray:
        """int64 ``[F, 3]``."""
        return self.model.faces_tensor.numpy().astype(np.int64)

    @torch.no_grad()
    def pose(self, rotations: np.ndarray | torch.Tensor, translations: np.ndarray | torch.Tensor) -> MeshSequence:
        """The posed mesh of every frame.

        Args:
            rotations: local joint rotations ``[T, 24, 6]`` (6D, :mod:`mdm.rotations`) or
                ``[T, 24, 3, 3]``, root (global orientation) first.
            translations: ``[T, 3]`` root joint position.

        Returns:
            Vertices ``[T, V, 3]`` with the root joint at ``translations``, the model's faces,
            and the posed joints ``[T, 24, 3]``.
        """
        from smplx.lbs import lbs

        rotations = torch.as_tensor(rotations, dtype=torch.float32)
        translations = torch.as_tensor(translations, dtype=torch.float32)
        if rotations.shape[1:] == (24, 6):
            rotations = rotation_6d_to_matrix(rotations)
        if rotations.dim() != 4 or rotations.shape[1:] != (24, 3, 3) or len(rotations) == 0:
            raise ValueError(f"rotations must be [T, 24, 6] or [T, 24, 3, 3] with T >= 1, got {list(rotations.shape)}")
        if translations.shape != (len(rotations), 3):
            raise ValueError(f"translations must be [{len(rotations)}, 3], got {list(translations.shape)}")
        model = self.model
        vertices, joints = [], []
        for start in range(0, len(rotations), _FRAMES_PER_BATCH):
            pose = rotations[start: start + _FRAMES_PER_BATCH]
            betas = torch.zeros(len(pose), model.num_betas)
            verts, joint = lbs(betas, pose, model.v_template, model.shapedirs, model.posedirs, model.J_regressor,
                               model.parents, model.lbs_weights, pose2rot=False)
            shift = translations[start: start + len(pose)] - joint[:, 0]
            vertices.append(verts + shift[:, None])
            joints.append(joint + shift[:, None])
        return MeshSequence(torch.cat(vertices).numpy(), self.faces, up_axis=self.skeleton.up_axis,
                            joints=torch.cat(joints).numpy(), skeleton=self.skeleton)


def export_meshes(mesh: MeshSequence, folder: str | Path, file_format: str = "ply") -> list[Path]:
    """Write one mesh file per frame, ``folder/frame_0000.<format>`` ..., with trimesh.

    Args:
        mesh: the sequence.
        folder: created if needed.
        file_format: ``ply`` or ``obj``.

    Returns:
        The files written, in frame order.
    """
    import trimesh

    if file_format not in MESH_FORMATS:
        raise ConfigError(f"unknown mesh format {file_format!r}; use one of {', '.join(MESH_FORMATS)}")
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{folder}: cannot create the mesh folder ({error.strerror or error})") from None
    paths = []
    for frame, vertices in enumerate(mesh.vertices):
        path = folder / f"frame_{frame:04d}.{file_format}"
        trimesh.Trimesh(vertices=vertices, faces=mesh.faces, process=False).export(path)
        paths.append(path)
    return paths


class MeshPanel(Panel):
    """A shaded mesh clip: one polygon collection whose triangles and colours change per frame."""

    def __init__(self, mesh: MeshSequence) -> None:
        self.mesh = mesh
        self.vertices = to_plot(mesh.vertices, mesh.up_axis)
        self.num_frames = len(mesh.vertices)
        self.bounds = Bounds.of(self.vertices.reshape(-1, 3))
        self.facing = None
        if mesh.joints is not None and mesh.skeleton is not None:
            joints = to_plot(mesh.joints, mesh.up_axis)[:, None]
            self.facing = facing_azimuth(joints, np.ones(joints.shape[:2], dtype=bool), mesh.skeleton)
        self.light = np.zeros(3)
        self.polygons: Poly3DCollection | None = None

    def draw(self, ax: Axes3D, view: View, azim: float) -> list[Artist]:
        light = camera_direction(view.elev, azim) + np.array([0.0, 0.0, 0.6])
        self.light = light / np.linalg.norm(light)
        self.polygons = Poly3DCollection([], edgecolor="none", zorder=2)
        ax.add_collection3d(self.polygons, autolim=False)
        return [self.polygons]

    def update(self, frame: int) -> None:
        triangles = self.vertices[frame][self.mesh.faces]
        normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
        normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
        brightness = AMBIENT + (1.0 - AMBIENT) * np.abs(normals @ self.light)
        colours = np.concatenate((brightness[:, None] * BODY_COLOUR, np.ones((len(triangles), 1))), -1)
        self.polygons.set_verts(triangles)
        self.polygons.set_facecolor(colours)


def _mesh_panels(mesh: MeshSequence | Sequence[MeshSequence]) -> list[MeshPanel]:
    meshes = [mesh] if isinstance(mesh, MeshSequence) else list(mesh)
    return [MeshPanel(m) for m in meshes]


def render_mesh_frames(
    mesh: MeshSequence | Sequence[MeshSequence],
    *,
    titles: Sequence[str] | None = None,
    title: str | None = None,
    grid: tuple[int, int] | None = None,
    view: View = View(),
) -> np.ndarray:
    """Shaded mesh frames of one sequence or a grid of them.

    Args:
        mesh: one sequence or a list (one panel each).
        titles, title, grid, view: as for :func:`mdm.render.stick.render_frames`.

    Returns:
        uint8 ``[T, H, W, 3]`` with ``T`` the longest sequence's length.
    """
    return np.stack(list(iter_frames(_mesh_panels(mesh), titles=titles, title=title, grid=grid, view=view)))


def render_mesh_video(
    mesh: MeshSequence | Sequence[MeshSequence],
    path: str | Path,
    *,
    fps: float | None = None,
    titles: Sequence[str] | None = None,
    title: str | None = None,
    grid: tuple[int, int] | None = None,
    view: View = View(),
) -> Path:
    """Write shaded mesh sequences as an ``.mp4`` or ``.gif`` video (see :func:`render_mesh_frames`)."""
    path = check_video_path(path)
    frames = iter_frames(_mesh_panels(mesh), titles=titles, title=title, grid=grid, view=view)
    return write_video(frames, path, DEFAULT_FPS if fps is None else fps)
