"""Rendering motions to frames and videos.

``render_frames``/``render_video`` draw 3D stick figures of clips of any skeleton; shaded SMPL
meshes are in :mod:`mdm.render.mesh` (``SmplBody``, ``render_mesh_video``), which needs torch
and smplx and is therefore not imported here.
"""

from mdm.render.figure import View
from mdm.render.stick import render_frames, render_video
from mdm.render.video import DEFAULT_FPS, VIDEO_SUFFIXES, check_video_path, write_video

__all__ = ["DEFAULT_FPS", "VIDEO_SUFFIXES", "View", "check_video_path", "render_frames", "render_video", "write_video"]
