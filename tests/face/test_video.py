"""Video identification on a clip the test makes with PyAV: tracking, descriptors per track,
the CSV, and the annotated copy."""

from __future__ import annotations

import csv
from pathlib import Path

import av
import numpy as np
import pytest

from cnnkit import face
from cnnkit.cli.main import main
from cnnkit.face.video import associate, identify_video, iou
from tests.face.shipped import write_clip, write_photos


def test_iou_and_association() -> None:
    a = (0, 9, 9, 0)  # 10x10
    assert iou(a, a) == 1.0
    assert iou(a, (0, 19, 9, 10)) == 0.0
    assert iou(a, (0, 14, 9, 5)) == pytest.approx(50 / 150)
    tracks = [(0, 9, 9, 0), (100, 109, 109, 100)]
    boxes = [(101, 110, 110, 101), (50, 59, 59, 50), (1, 10, 10, 1)]
    assert associate(tracks, boxes, 0.3) == {0: 1, 2: 0}


@pytest.fixture(scope="module")
def clip_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("video")
    photos = write_photos(root / "photos")
    clip = write_clip(root / "clip.mp4", n_frames=12, with_stranger=True)
    db = root / "faces.sqlite3"
    with face.Gallery(db) as g:
        face.enroll(g, "Grace", [photos["grace"]], upsample=0)
    return clip, db, root


@pytest.mark.slow
def test_identify_video_tracks_and_names(clip_db) -> None:
    clip, db, root = clip_db
    out = root / "annotated.mp4"
    with face.Gallery(db, readonly=True) as g:
        tracked = identify_video(g, clip, every=4, refresh=100, out=out, upsample=0)
        plain = identify_video(g, clip, every=4, track=False, upsample=0, show_progress=False)
    assert tracked.frames == 12 and tracked.detections == 3  # frames 0, 4, 8
    # Two faces, followed across detections: two tracks, each described once.
    assert tracked.tracks == 2 and tracked.descriptors == 2
    assert plain.descriptors == 6 and plain.tracks == 6  # a new "track" at every detection
    by_frame: dict[int, list] = {}
    for r in tracked.rows:
        by_frame.setdefault(r.frame, []).append(r)
    assert sorted(by_frame) == list(range(12)) and all(len(v) == 2 for v in by_frame.values())
    names = {r.track: r.name for r in tracked.rows}
    assert sorted(names.values(), key=str) == ["Grace", None]  # the astronaut is unknown
    grace_rows = [r for r in tracked.rows if r.name == "Grace"]
    assert grace_rows[0].box != grace_rows[-1].box  # the box follows her to the right
    assert grace_rows[-1].box[3] > grace_rows[0].box[3]
    assert all(r.time == pytest.approx(r.frame / 10, abs=1e-6) for r in tracked.rows)
    # The annotated copy: same frame count, a green box where Grace is.
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 12
    top, right, bottom, left = grace_rows[0].box
    edge = frames[0][top, left:right].astype(int)
    green = (edge[:, 1] > 150) & (edge[:, 0] < 120) & (edge[:, 2] < 150)
    assert green.mean() > 0.5
    assert not list(root.glob("*.tmp*")) and not list(root.glob(".annotated*"))


@pytest.mark.slow
def test_cli_identify_video_csv(clip_db, capsys) -> None:
    clip, db, root = clip_db
    out_csv = root / "who.csv"
    code = main(
        ["face", "identify", str(clip), "--db", str(db), "--every", "6", "--csv", str(out_csv),
         "--upsample", "0"]
    )  # fmt: skip
    assert code == 0
    rows = list(csv.reader(out_csv.open()))
    assert rows[0] == ["frame", "time", "track", "top", "right", "bottom", "left", "name",
                       "distance"]  # fmt: skip
    assert len(rows) == 1 + 12 * 2
    assert {r[7] for r in rows[1:]} == {"Grace", "unknown"}
    assert "12 frames, 2 detections" in capsys.readouterr().err
    code = main(["face", "identify", str(root / "missing.mp4"), "--db", str(db)])
    assert code == 2 and "missing.mp4" in capsys.readouterr().err
    photo = root / "photos" / "grace.png"
    code = main(["face", "identify", str(photo), "--db", str(db), "-o", str(root / "x.mp4")])
    assert code == 2 and "for a video" in capsys.readouterr().err
    np.testing.assert_array_equal(sorted({int(r[2]) for r in rows[1:]}), [0, 1])
