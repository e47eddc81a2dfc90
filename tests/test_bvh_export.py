"""BVH and GLB export: inverse kinematics that forward kinematics undoes, files a second library reads the
same way, and one clear message for bad requests."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from format_files import real_kard_dir, real_nw_ucla_dir
from scipy.spatial.transform import Rotation
from toy_data import toy_archive, toy_dataset

from benchmarks.diagnostics.bvh_round_trip import bone_angles_deg
from mdm.data.readers import read_dataset
from mdm.data.readers.bvh import read_bvh
from mdm.export.bvh import positions_to_rotations, write_bvh
from mdm.export.gltf import write_glb
from mdm.kinematics import forward_kinematics
from mdm.rotations import axis_angle_to_matrix
from mdm.skeleton import load_skeleton

REPO = Path(__file__).resolve().parents[1]
SKELETON = load_skeleton("kinect_v1")


def rigid_clip(frames: int = 12, seed: int = 0, facing_away: bool = False) -> np.ndarray:
    """A clip of constant bone lengths: random joint rotations on a rest pose, walking along x."""
    rng = np.random.default_rng(seed)
    rest = toy_dataset(clips_per_class=1).clips[0][0].astype(np.float64)
    parents = np.array(SKELETON.parents)
    offsets = rest - rest[np.maximum(parents, 0)]
    offsets[SKELETON.root] = 0.0
    rotations = Rotation.from_rotvec(rng.normal(0, 0.4, size=(frames * len(parents), 3))).as_matrix()
    rotations = rotations.reshape(frames, len(parents), 3, 3)
    if facing_away:
        rotations[:, SKELETON.root] = Rotation.from_euler("y", 180, degrees=True).as_matrix() @ rotations[:, SKELETON.root]
    root = np.stack([np.linspace(0, 1, frames), np.full(frames, 0.9), np.zeros(frames)], axis=1)
    return forward_kinematics(torch.as_tensor(rotations), torch.as_tensor(offsets), torch.as_tensor(root),
                              SKELETON.parents).numpy()


def file_positions(path: Path, names: tuple[str, ...]) -> np.ndarray:
    motion = read_bvh(path)
    return motion.positions()[:, [motion.joint_names.index(name) for name in names]]


@pytest.mark.parametrize("facing_away", [False, True])
def test_forward_kinematics_of_the_written_file_gives_the_clip_back(tmp_path: Path, facing_away: bool) -> None:
    clip = rigid_clip(facing_away=facing_away)
    path = write_bvh(tmp_path / "clip.bvh", clip, SKELETON, fps=30)
    np.testing.assert_allclose(file_positions(path, SKELETON.joint_names), clip, atol=1e-4)
    pose = positions_to_rotations(clip, SKELETON)
    assert "shoulder_center_to_head" in pose.names and pose.names[0] == SKELETON.joint_names[SKELETON.root]
    np.testing.assert_allclose(pose.rotations[0], np.broadcast_to(np.eye(3), pose.rotations[0].shape), atol=1e-9)


def test_a_second_library_reads_the_same_motion(tmp_path: Path) -> None:
    bvhio = pytest.importorskip("bvhio")
    clip = rigid_clip(seed=3)
    path = write_bvh(tmp_path / "clip.bvh", clip, SKELETON, fps=25)
    hierarchy = bvhio.readAsHierarchy(str(path))
    joints = {entry[0].Name: entry[0] for entry in hierarchy.layout()}
    for frame in (0, 5, 11):
        hierarchy.loadPose(frame)
        theirs = np.array([list(joints[name].PositionWorld) for name in SKELETON.joint_names])
        np.testing.assert_allclose(theirs, clip[frame], atol=1e-4)
    assert bvhio.readAsBvh(str(path)).FrameCount == len(clip)


@pytest.mark.parametrize(("name", "folder"), [("nw-ucla", real_nw_ucla_dir), ("kard", real_kard_dir)])
def test_real_clips_keep_their_bone_directions_within_2_degrees(tmp_path: Path, name: str, folder: object) -> None:
    root = folder()
    if not root.is_dir():
        pytest.skip(f"{name} data not found at {root}")
    dataset = read_dataset(name, root)
    for index in range(0, len(dataset), max(1, len(dataset) // 12)):
        clip = dataset.clips[index]
        path = write_bvh(tmp_path / "clip.bvh", clip, dataset.skeleton, fps=30)
        angles = bone_angles_deg(file_positions(path, dataset.skeleton.joint_names), clip, dataset.skeleton.parents)
        assert angles.max() < 2.0, dataset.clip_ids[index]


def test_the_command_writes_clips_and_refuses_bad_requests(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=2)
    command = [sys.executable, str(REPO / "run/export_motion.py"), str(archive)]
    done = subprocess.run(command + ["--index", "0", "--index", "2", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "out").glob("*.bvh"))) == 2
    glb = subprocess.run(command + ["--index", "1", "--format", "glb", "--out", str(tmp_path / "one.glb")],
                         capture_output=True, text=True, timeout=120)
    assert glb.returncode == 0 and (tmp_path / "one.glb").stat().st_size > 0, glb.stderr
    for args, words in [(["--index", "99", "--out", str(tmp_path / "a.bvh")], "--index 99: "),
                        (["--index", "0", "--format", "fbx", "--out", str(tmp_path / "a.fbx")], "known formats are bvh, glb, npz"),
                        (["--index", "0", "--out", str(tmp_path / "missing" / "a.bvh")], "no folder")]:
        bad = subprocess.run(command + args, capture_output=True, text=True, timeout=120)
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 2 and len(lines) == 1 and words in lines[0], bad.stderr


def test_a_glb_plays_the_clip_back_and_a_second_library_loads_it(tmp_path: Path) -> None:
    import pygltflib
    import trimesh

    clip = rigid_clip(frames=10, seed=1)
    path = write_glb(tmp_path / "clip.glb", clip, SKELETON, fps=30)
    gltf = pygltflib.GLTF2().load(str(path))
    blob = gltf.binary_blob()

    def values(accessor_index: int) -> np.ndarray:
        accessor = gltf.accessors[accessor_index]
        width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[accessor.type]
        view = gltf.bufferViews[accessor.bufferView]
        return np.frombuffer(blob, np.float32, accessor.count * width, view.byteOffset).reshape(accessor.count, width)

    animation = gltf.animations[0]
    tracks = {(c.target.node, c.target.path): values(animation.samplers[c.sampler].output) for c in animation.channels}
    parent = {child: index for index, node in enumerate(gltf.nodes) for child in node.children or []}
    for frame in (0, 6):
        world: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for index in range(len(gltf.nodes)):  # parents come before children
            rotation = Rotation.from_quat(tracks[(index, "rotation")][frame]).as_matrix()
            offset = tracks.get((index, "translation"), [np.array(gltf.nodes[index].translation)] * 10)[frame]
            if index in parent:
                parent_rotation, parent_position = world[parent[index]]
                world[index] = (parent_rotation @ rotation, parent_position + parent_rotation @ offset)
            else:
                world[index] = (rotation, offset)
        names = [node.name for node in gltf.nodes]
        played = np.array([world[names.index(name)][1] for name in SKELETON.joint_names])
        np.testing.assert_allclose(played, clip[frame], atol=1e-4)
    assert len(trimesh.load(str(path)).graph.nodes) >= len(gltf.nodes)


def test_smpl_data_exports_as_amass_npz_and_positions_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    poses = [rng.normal(scale=0.5, size=(6, 72)).astype(np.float32)]
    joints = [rng.normal(size=(6, 24, 3)).astype(np.float32)]
    source = tmp_path / "humanact12poses.pkl"
    source.write_bytes(pickle.dumps({"poses": poses, "joints3D": joints, "y": [3]}))
    command = [sys.executable, str(REPO / "run/export_motion.py"), str(source), "--input-format", "humanact12poses",
               "--index", "0", "--format", "npz", "--out", str(tmp_path / "clip.npz")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with np.load(tmp_path / "clip.npz") as written:
        assert written["poses"].shape == (6, 72) and float(written["mocap_framerate"]) > 0
        np.testing.assert_allclose(written["trans"], joints[0][:, 0], atol=1e-6)
        ours = axis_angle_to_matrix(torch.as_tensor(written["poses"].reshape(6, 24, 3)))
        theirs = axis_angle_to_matrix(torch.as_tensor(poses[0].reshape(6, 24, 3)))
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=1)
    refused = subprocess.run([sys.executable, str(REPO / "run/export_motion.py"), str(archive), "--index", "0",
                              "--format", "npz", "--out", str(tmp_path / "x.npz")], capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and "holds joint positions only" in refused.stderr
