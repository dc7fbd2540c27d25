"""Persons and photos through a real ``cnnkit serve`` process: CRUD, pagination, the contract."""

from __future__ import annotations

import httpx

from tests.serve.conftest import Keys, is_problem


def test_create_person_contract(api: httpx.Client, keys: Keys, new_person) -> None:
    pid, name = new_person("ada")
    r = api.get(f"/persons/{pid}", headers=keys.headers("query"))
    assert r.status_code == 200
    assert r.json()["id"] == pid and r.json()["name"] == name and r.json()["photos"] == 0
    listed = api.get("/persons", params={"limit": 1000}, headers=keys.headers("query")).json()
    assert {"id": pid, "name": name, "photos": 0} in [
        {k: item[k] for k in ("id", "name", "photos")} for item in listed["items"]
    ]


def test_create_twice_conflicts_and_bad_names_are_422(
    api: httpx.Client, keys: Keys, new_person
) -> None:
    _, name = new_person("dup")
    r = api.post("/persons", json={"name": name}, headers=keys.headers("enroll"))
    assert name in is_problem(r, 409, "conflict")["detail"]
    for bad in ("", " ", "a,b", "x" * 201):
        r = api.post("/persons", json={"name": bad}, headers=keys.headers("enroll"))
        is_problem(r, 422, "invalid-input")
    is_problem(api.post("/persons", json={}, headers=keys.headers("enroll")), 422, "invalid-input")
    r = api.post("/persons", content=b"not json", headers=keys.headers("enroll"))
    is_problem(r, 422, "invalid-input")


def test_pagination_walks_every_person_once_in_name_order(
    api: httpx.Client, keys: Keys, new_person
) -> None:
    made = {new_person("page")[0] for _ in range(5)}
    seen: list[dict] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        page = api.get(
            "/persons", params={"offset": offset, "limit": 2}, headers=keys.headers("query")
        ).json()
        assert len(page["items"]) <= 2 and page["limit"] == 2 and page["offset"] == offset
        seen.extend(page["items"])
        offset = page["next_offset"]
        pages += 1
    assert len(seen) == page["total"] >= 5 and pages == -(-page["total"] // 2)
    assert made <= {p["id"] for p in seen}
    assert len({p["id"] for p in seen}) == len(seen)
    names = [p["name"] for p in seen]
    assert names == sorted(names)
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "x"}):
        r = api.get("/persons", params=params, headers=keys.headers("query"))
        is_problem(r, 422, "invalid-input")


def test_rename_and_delete(api: httpx.Client, keys: Keys, new_person) -> None:
    pid, _ = new_person("old")
    _, taken = new_person("taken")
    r = api.patch(
        f"/persons/{pid}", json={"name": f"renamed-{pid}"}, headers=keys.headers("enroll")
    )
    assert r.status_code == 200 and r.json()["name"] == f"renamed-{pid}"
    r = api.patch(f"/persons/{pid}", json={"name": taken}, headers=keys.headers("enroll"))
    is_problem(r, 409, "conflict")
    r = api.delete(f"/persons/{pid}", headers=keys.headers("enroll"))
    assert r.status_code == 204 and r.content == b""
    is_problem(api.get(f"/persons/{pid}", headers=keys.headers("query")), 404, "not-found")
    is_problem(api.delete(f"/persons/{pid}", headers=keys.headers("enroll")), 404, "not-found")
    r = api.patch(f"/persons/{pid}", json={"name": "x"}, headers=keys.headers("enroll"))
    is_problem(r, 404, "not-found")
    is_problem(api.get("/persons/abc", headers=keys.headers("query")), 422, "invalid-input")


def test_photos_add_list_delete(
    api: httpx.Client, keys: Keys, new_person, photos: dict[str, bytes]
) -> None:
    pid, name = new_person("grace")
    enroll = keys.headers("enroll")
    r = api.post(
        f"/persons/{pid}/photos", files={"file": ("g.png", photos["grace"])}, headers=enroll
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["person"] == {**body["person"], "id": pid, "name": name, "photos": 1}
    assert body["faces"] == 1 and set(body["box"]) == {"top", "right", "bottom", "left"}
    assert body["min_distance"] is None and body["far"] is False  # the first photo
    r = api.post(
        f"/persons/{pid}/photos", files={"file": ("c.png", photos["grace_crop"])}, headers=enroll
    )
    assert r.status_code == 201 and r.json()["person"]["photos"] == 2
    assert 0 < r.json()["min_distance"] < r.json()["tau"] and r.json()["far"] is False
    listed = api.get(f"/persons/{pid}/photos", headers=keys.headers("query")).json()
    assert [p["source"] for p in listed] == ["g.png", "c.png"]
    assert all(len(p["sha256"]) == 64 and "vector" not in p for p in listed)
    r = api.post(
        f"/persons/{pid}/photos", files={"file": ("g.png", photos["grace"])}, headers=enroll
    )
    assert "already enrolled" in is_problem(r, 409, "already-enrolled")["detail"]
    assert api.get(f"/persons/{pid}", headers=enroll).json()["photos"] == 2
    r = api.delete(f"/persons/{pid}/photos/{listed[0]['id']}", headers=enroll)
    assert r.status_code == 204
    assert api.get(f"/persons/{pid}", headers=enroll).json()["photos"] == 1
    r = api.delete(f"/persons/{pid}/photos/{listed[0]['id']}", headers=enroll)
    is_problem(r, 404, "not-found")


def test_photo_rules_of_enroll(
    api: httpx.Client, keys: Keys, new_person, photos: dict[str, bytes]
) -> None:
    pid, _ = new_person("rules")
    enroll = keys.headers("enroll")
    url = f"/persons/{pid}/photos"
    r = api.post(url, files={"file": ("brick.png", photos["noface"])}, headers=enroll)
    assert "no face" in is_problem(r, 422, "no-face")["detail"]
    r = api.post(url, files={"file": ("two.png", photos["two"])}, headers=enroll)
    assert "largest=true" in is_problem(r, 422, "several-faces")["detail"]
    assert api.get(f"/persons/{pid}", headers=enroll).json()["photos"] == 0
    r = api.post(
        url, params={"largest": "true"}, files={"file": ("two.png", photos["two"])}, headers=enroll
    )
    assert r.status_code == 201 and r.json()["faces"] == 2
    is_problem(api.post(url, headers=enroll), 422, "invalid-input")  # no file field
    r = api.post(
        "/persons/999999/photos", files={"file": ("g.png", photos["grace"])}, headers=enroll
    )
    is_problem(r, 404, "not-found")


def test_same_file_under_two_names_is_reported(
    api: httpx.Client, keys: Keys, new_person, photos: dict[str, bytes]
) -> None:
    first, first_name = new_person("same-a")
    second, _ = new_person("same-b")
    enroll = keys.headers("enroll")
    api.post(f"/persons/{first}/photos", files={"file": ("a.png", photos["grace"])}, headers=enroll)
    r = api.post(
        f"/persons/{second}/photos", files={"file": ("a.png", photos["grace"])}, headers=enroll
    )
    assert r.status_code == 201 and r.json()["also_enrolled_as"] == [first_name]
