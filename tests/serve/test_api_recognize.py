"""Verify, identify and detect through a real server, in a gallery of their own."""

from __future__ import annotations

import httpx
import pytest

from cnnkit.face.descriptors import DEFAULT_PIPELINE
from tests.serve.conftest import is_problem
from tests.serve.server import make_key


@pytest.fixture(scope="module")
def faces(api_module: httpx.Client, serve_db: str, photos: dict[str, bytes]) -> dict[str, str]:
    """Gallery "faces" with Grace enrolled; its enroll and query keys."""
    enroll = {"X-API-Key": make_key(serve_db, "enroll", gallery="faces")}
    query = {"X-API-Key": make_key(serve_db, "query", gallery="faces")}
    pid = api_module.post("/persons", json={"name": "Grace"}, headers=enroll).json()["id"]
    r = api_module.post(
        f"/persons/{pid}/photos", files={"file": ("g.png", photos["grace"])}, headers=enroll
    )
    assert r.status_code == 201, r.text
    return {"enroll": enroll["X-API-Key"], "query": query["X-API-Key"], "id": str(pid)}


@pytest.fixture(scope="module")
def api_module(server) -> httpx.Client:
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as client:
        yield client


def _h(faces: dict[str, str], role: str = "query") -> dict[str, str]:
    return {"X-API-Key": faces[role]}


def test_identify_contract_known_and_unknown(
    api_module: httpx.Client, faces: dict[str, str], photos: dict[str, bytes]
) -> None:
    r = api_module.post("/identify", files={"file": ("two.png", photos["two"])}, headers=_h(faces))
    assert r.status_code == 200, r.text
    found = r.json()["faces"]
    assert len(found) == 2
    for face in found:
        assert set(face["box"]) == {"top", "right", "bottom", "left"}
        assert isinstance(face["distance"], float) and isinstance(face["candidates"], list)
    # Grace is the left photo of the pair, the astronaut the right one.
    left, right = sorted(found, key=lambda f: f["box"]["left"])
    assert left["name"] == "Grace" and left["distance"] < 0.6
    assert right["name"] == "unknown" and right["distance"] > r.json()["tau"]
    assert right["candidates"][0]["name"] == "Grace"  # nearest, yet too far: unknown


def test_identify_a_transformed_copy(
    api_module: httpx.Client, faces: dict[str, str], photos: dict[str, bytes]
) -> None:
    r = api_module.post(
        "/identify", files={"file": ("f.png", photos["grace_flip"])}, headers=_h(faces)
    )
    assert [f["name"] for f in r.json()["faces"]] == ["Grace"]
    r = api_module.post("/identify", files={"file": ("b.png", photos["noface"])}, headers=_h(faces))
    assert r.status_code == 200 and r.json()["faces"] == []


def test_verify_contract(
    api_module: httpx.Client, faces: dict[str, str], photos: dict[str, bytes]
) -> None:
    same = api_module.post(
        "/verify",
        files={"file": ("f.png", photos["grace_crop"])},
        data={"person": "Grace"},
        headers=_h(faces),
    ).json()
    assert same["match"] is True and 0 <= same["distance"] <= same["tau"] == 0.6
    other = api_module.post(
        "/verify",
        files={"file": ("a.png", photos["astro"])},
        data={"person": "Grace"},
        headers=_h(faces),
    ).json()
    assert other["match"] is False and other["distance"] > other["tau"]
    strict = api_module.post(
        "/verify",
        params={"tolerance": same["distance"] / 2},
        files={"file": ("f.png", photos["grace_crop"])},
        data={"person": "Grace"},
        headers=_h(faces),
    ).json()
    assert strict["match"] is False and strict["tau"] == pytest.approx(same["distance"] / 2)


def test_verify_errors(
    api_module: httpx.Client, faces: dict[str, str], photos: dict[str, bytes]
) -> None:
    r = api_module.post(
        "/verify",
        files={"file": ("g.png", photos["grace"])},
        data={"person": "Nobody"},
        headers=_h(faces),
    )
    assert "Nobody" in is_problem(r, 404, "not-found")["detail"]
    r = api_module.post(
        "/verify",
        files={"file": ("b.png", photos["noface"])},
        data={"person": "Grace"},
        headers=_h(faces),
    )
    assert "no face" in is_problem(r, 422, "no-face")["detail"]
    api_module.post("/persons", json={"name": "Empty"}, headers=_h(faces, "enroll"))
    r = api_module.post(
        "/verify",
        files={"file": ("g.png", photos["grace"])},
        data={"person": "Empty"},
        headers=_h(faces),
    )
    assert "no enrolled photo" in is_problem(r, 404, "not-found")["detail"]
    r = api_module.post("/verify", files={"file": ("g.png", photos["grace"])}, headers=_h(faces))
    assert "person" in is_problem(r, 422, "invalid-input")["detail"]


def test_detect_boxes(
    api_module: httpx.Client, faces: dict[str, str], photos: dict[str, bytes]
) -> None:
    r = api_module.post("/detect", files={"file": ("t.png", photos["two"])}, headers=_h(faces))
    assert len(r.json()["faces"]) == 2
    r = api_module.post("/detect", files={"file": ("b.png", photos["noface"])}, headers=_h(faces))
    assert r.json()["faces"] == []
    r = api_module.post(
        "/detect",
        params={"upsample": 9},
        files={"file": ("t.png", photos["two"])},
        headers=_h(faces),
    )
    assert "upsample" in is_problem(r, 422, "invalid-input")["detail"]


def test_a_turned_phone_photo_is_identified_upright_as_the_cli_does(
    api_module: httpx.Client, faces: dict[str, str], tmp_path
) -> None:
    # 4000x3000 JPEG stored turned with EXIF orientation 6: the API decodes it upright, searches
    # it scaled down, and answers the box the CLI's use case gives for the same file.
    from cnnkit.face.usecases import detect_faces
    from tests.face.shipped import phone_jpeg

    data = phone_jpeg(6)
    (tmp_path / "IMG_0001.jpg").write_bytes(data)
    r = api_module.post(
        "/identify", files={"file": ("IMG_0001.jpg", data)}, headers=_h(faces), timeout=120
    )
    assert r.status_code == 200, r.text
    (face,) = r.json()["faces"]
    assert face["name"] == "Grace"
    (box,) = detect_faces(tmp_path / "IMG_0001.jpg")
    assert tuple(face["box"][k] for k in ("top", "right", "bottom", "left")) == box


def test_info_counts(api_module: httpx.Client, faces: dict[str, str]) -> None:
    info = api_module.get("/info", headers=_h(faces)).json()
    assert info["gallery"] == "faces" and info["descriptors"] == 1
    assert info["tau"] == 0.6 and info["tau_calibrated"] is False
    assert info["encoder"] == info["gallery_encoder"] and info["encoder"].startswith("dlib")
    assert info["gallery_pipeline"] == DEFAULT_PIPELINE  # recorded by the enrollment


def test_removed_person_is_no_longer_identified(
    api_module: httpx.Client, faces: dict[str, str], photos: dict[str, bytes]
) -> None:
    enroll = _h(faces, "enroll")
    pid = api_module.post("/persons", json={"name": "Astro"}, headers=enroll).json()["id"]
    r = api_module.post(
        f"/persons/{pid}/photos",
        params={"largest": "true"},  # the astronaut photo holds a second, small face
        files={"file": ("a.png", photos["astro"])},
        headers=enroll,
    )
    assert r.status_code == 201
    names = lambda: sorted(  # noqa: E731
        f["name"]
        for f in api_module.post(
            "/identify", files={"file": ("t.png", photos["two"])}, headers=_h(faces)
        ).json()["faces"]
    )
    assert names() == ["Astro", "Grace"]
    assert api_module.delete(f"/persons/{pid}", headers=enroll).status_code == 204
    assert names() == ["Grace", "unknown"]
