"""Video identification speed: frames/s on a generated clip, with and without tracking.

    OMP_NUM_THREADS=1 .venv/bin/python bench/face_video.py [--frames 60]

The clip is made as the tests make theirs (tests/face/shipped.py: write_clip): Grace Hopper's face
moving beside the astronaut's, 512x256, MPEG-4. Grace is enrolled; then, at 1 thread:

- tracked: ``identify_video(every=5, refresh=10)``: HOG every 5th frame, IoU tracking, one
  descriptor per track (the default of ``cnnkit face identify clip.mp4``);
- untracked: ``identify_video(every=1, track=False)``: detect and describe every face of every
  frame (what running ``identify`` on each frame as a photo does).

Both use the default descriptor pipeline. Last line:
``RESULT video_fps_tracked=<f> video_fps_untracked=<f> tracking_speedup=<x>``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    import torch
    from tests.face.shipped import write_clip, write_photos

    from cnnkit import face
    from cnnkit.face.video import identify_video

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clip = write_clip(root / "clip.mp4", n_frames=args.frames, with_stranger=True)
        photos = write_photos(root / "photos")
        with face.Gallery(root / "db.sqlite3") as db:
            face.enroll(db, "Grace", [photos["grace"]], upsample=0)
            identify_video(db, clip, every=5, upsample=0, show_progress=False)  # warm up
            runs = {
                "tracked": identify_video(db, clip, every=5, refresh=10, upsample=0),
                "untracked": identify_video(db, clip, every=1, track=False, upsample=0),
            }
    fps = {}
    for key, s in runs.items():
        fps[key] = s.frames / s.seconds
        print(
            f"{key:9s}: {s.frames} frames, {s.detections} detections, {s.descriptors} "
            f"descriptors, {s.tracks} tracks, {fps[key]:.1f} frames/s"
        )
    print(
        f"RESULT video_fps_tracked={fps['tracked']:.1f} video_fps_untracked="
        f"{fps['untracked']:.1f} tracking_speedup={fps['tracked'] / fps['untracked']:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
