"""glTF binary (GLB) export of joint-position clips: an animated node skeleton any glTF viewer plays.

The skeleton is the one the BVH export writes (:func:`mdm.export.bvh.positions_to_rotations`): one node
per joint (the zero-length branch joints included), each translated by its rest offset from its
parent, with a rotation animation channel (quaternions, linear interpolation) and, for the root, a
translation channel. Every joint node carries the same small octahedron mesh, so viewers that do
not draw bare nodes show the joints moving. Written with ``pygltflib``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pygltflib
from scipy.spatial.transform import Rotation

from mdm.export.bvh import positions_to_rotations
from mdm.skeleton import Skeleton

MARKER_SHARE = 0.12
"""Radius of the joint markers as a share of the median bone length."""


class _Blob:
    """The binary buffer, its views and accessors, built up together."""

    def __init__(self, gltf: pygltflib.GLTF2) -> None:
        self.gltf = gltf
        self.data = bytearray()

    def add(self, array: np.ndarray, kind: str, target: int | None = None, bounds: bool = False) -> int:
        """Append ``array`` (float32 ``[N, k]`` or ``[N]``, or uint16 indices) and return its accessor's index."""
        while len(self.data) % 4:
            self.data.append(0)
        raw = np.ascontiguousarray(array)
        self.gltf.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(self.data), byteLength=raw.nbytes,
                                                          target=target))
        self.data.extend(raw.tobytes())
        component = pygltflib.UNSIGNED_SHORT if raw.dtype == np.uint16 else pygltflib.FLOAT
        flat = raw.reshape(len(raw), -1)
        accessor = pygltflib.Accessor(bufferView=len(self.gltf.bufferViews) - 1, componentType=component,
                                      count=len(raw), type=kind)
        if bounds:
            accessor.min = flat.min(0).tolist()
            accessor.max = flat.max(0).tolist()
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1


def _marker_mesh(blob: _Blob, radius: float) -> int:
    """An octahedron of ``radius``, as mesh 0."""
    vertices = (radius * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])).astype(
        np.float32)
    faces = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]],
                     dtype=np.uint16).reshape(-1)
    position = blob.add(vertices, pygltflib.VEC3, pygltflib.ARRAY_BUFFER, bounds=True)
    indices = blob.add(faces, pygltflib.SCALAR, pygltflib.ELEMENT_ARRAY_BUFFER)
    blob.gltf.meshes.append(pygltflib.Mesh(primitives=[pygltflib.Primitive(
        attributes=pygltflib.Attributes(POSITION=position), indices=indices)]))
    return len(blob.gltf.meshes) - 1


def write_glb(path: str | Path, positions: np.ndarray, skeleton: Skeleton, fps: float) -> Path:
    """Write a joint-position clip ``[T, J, 3]`` as an animated GLB (units as given), whole or not at all."""
    pose = positions_to_rotations(positions, skeleton)
    frames, joints = pose.rotations.shape[:2]
    gltf = pygltflib.GLTF2(asset=pygltflib.Asset(generator="imdm toolkit"), scene=0)
    blob = _Blob(gltf)
    bone_lengths = np.linalg.norm(pose.offsets, axis=-1)
    mesh = _marker_mesh(blob, MARKER_SHARE * float(np.median(bone_lengths[bone_lengths > 0])))
    quaternions = Rotation.from_matrix(pose.rotations.reshape(-1, 3, 3)).as_quat().reshape(frames, joints, 4)
    for joint in range(joints):
        children = [c for c, p in enumerate(pose.parents) if p == joint]
        translation = pose.root_positions[0] if pose.parents[joint] < 0 else pose.offsets[joint]
        gltf.nodes.append(pygltflib.Node(name=pose.names[joint], mesh=mesh, children=children or None,
                                         translation=[float(v) for v in translation],
                                         rotation=[float(v) for v in quaternions[0, joint]]))
    gltf.scenes.append(pygltflib.Scene(nodes=[pose.parents.index(-1)]))
    times = blob.add((np.arange(frames) / fps).astype(np.float32), pygltflib.SCALAR, bounds=True)
    animation = pygltflib.Animation(name="motion", samplers=[], channels=[])
    for joint in range(joints):
        output = blob.add(quaternions[:, joint].astype(np.float32), pygltflib.VEC4)
        animation.samplers.append(pygltflib.AnimationSampler(input=times, output=output, interpolation="LINEAR"))
        animation.channels.append(pygltflib.AnimationChannel(
            sampler=len(animation.samplers) - 1, target=pygltflib.AnimationChannelTarget(node=joint, path="rotation")))
    root = pose.parents.index(-1)
    output = blob.add(pose.root_positions.astype(np.float32), pygltflib.VEC3)
    animation.samplers.append(pygltflib.AnimationSampler(input=times, output=output, interpolation="LINEAR"))
    animation.channels.append(pygltflib.AnimationChannel(
        sampler=len(animation.samplers) - 1, target=pygltflib.AnimationChannelTarget(node=root, path="translation")))
    gltf.animations.append(animation)
    gltf.buffers.append(pygltflib.Buffer(byteLength=len(blob.data)))
    gltf.set_binary_blob(bytes(blob.data))
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    gltf.save_binary(str(partial))
    os.replace(partial, path)
    return path
