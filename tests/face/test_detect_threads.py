"""Face detection from several threads at once (the service's inference threads) is safe."""

from __future__ import annotations

import threading

import numpy as np

from cnnkit.face.detection import detect, detect_scored
from tests.face import shipped


def test_concurrent_detection_gives_the_serial_answer() -> None:
    # Unguarded, dlib's shared detector corrupts the heap here (free(): corrupted chunks, or
    # hundreds of boxes): the test then crashes or fails.
    images = [np.asarray(shipped.grace()), np.asarray(shipped.astronaut())]
    images = [im[::2, ::2].copy() for im in images]  # half size: the race, in less time
    serial = [detect(im, 1) for im in images]
    scored = [[b for b, _ in detect_scored(im, 1)] for im in images]
    assert scored == serial and all(serial)
    wrong: list[object] = []

    def worker(k: int) -> None:
        for j in range(4):
            i = (k + j) % 2
            found = detect(images[i], 1) if j % 2 else [b for b, _ in detect_scored(images[i], 1)]
            if found != serial[i]:
                wrong.append((i, found))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not wrong, wrong[:3]
