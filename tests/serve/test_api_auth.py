"""Keys and roles through a real server: 401 without a valid key, 403 per role, galleries."""

from __future__ import annotations

import httpx
import pytest

from tests.serve.conftest import Keys, is_problem
from tests.serve.server import cnnkit, make_key

# (method, path, least role); {id} is a person of the default gallery.
ENDPOINTS = [
    ("GET", "/persons", "query"),
    ("GET", "/persons/{id}", "query"),
    ("GET", "/persons/{id}/photos", "query"),
    ("GET", "/info", "query"),
    ("GET", "/models", "query"),
    ("GET", "/models/lenet5/summary", "query"),
    ("POST", "/identify", "query"),
    ("POST", "/verify", "query"),
    ("POST", "/detect", "query"),
    ("POST", "/edges", "query"),
    ("POST", "/persons", "enroll"),
    ("PATCH", "/persons/{id}", "enroll"),
    ("POST", "/persons/{id}/photos", "enroll"),
    ("DELETE", "/persons/{id}/photos/1", "enroll"),
    ("DELETE", "/persons/{id}", "enroll"),
    ("GET", "/keys", "admin"),
    ("POST", "/keys", "admin"),
    ("DELETE", "/keys/999999", "admin"),
    ("GET", "/audit", "admin"),
]
RANK = {"query": 0, "enroll": 1, "admin": 2}


@pytest.mark.parametrize(("method", "path", "least"), ENDPOINTS)
def test_roles(
    api: httpx.Client, keys: Keys, new_person, method: str, path: str, least: str
) -> None:
    pid, _ = new_person("auth")
    url = path.format(id=pid)
    for headers in ({}, {"X-API-Key": "cnk_not-a-key"}):
        r = api.request(method, url, headers=headers)
        assert is_problem(r, 401, "unauthorized") and "WWW-Authenticate" in r.headers
    for role in RANK:
        r = api.request(method, url, headers=keys.headers(role))
        if RANK[role] < RANK[least]:
            assert least in is_problem(r, 403, "forbidden")["detail"]
        else:  # allowed: whatever the handler says of the (empty) request, not 401/403
            assert r.status_code not in (401, 403), (role, r.text)


def test_gallery_isolation(
    api: httpx.Client, keys: Keys, new_person, photos: dict[str, bytes]
) -> None:
    pid, name = new_person("mine")
    other = keys.headers("other_admin")
    listed = api.get("/persons", params={"limit": 1000}, headers=other).json()
    assert name not in [p["name"] for p in listed["items"]]
    for method, url in (
        ("GET", f"/persons/{pid}"),
        ("GET", f"/persons/{pid}/photos"),
        ("PATCH", f"/persons/{pid}"),
        ("DELETE", f"/persons/{pid}"),
    ):
        kwargs = {"json": {"name": "stolen"}} if method == "PATCH" else {}
        is_problem(api.request(method, url, headers=other, **kwargs), 404, "not-found")
    r = api.post(
        f"/persons/{pid}/photos", files={"file": ("g.png", photos["grace"])}, headers=other
    )
    is_problem(r, 404, "not-found")
    # The same name may exist in both galleries.
    r = api.post("/persons", json={"name": name}, headers=other)
    assert r.status_code == 201
    api.delete(f"/persons/{r.json()['id']}", headers=other)
    assert api.get(f"/persons/{pid}", headers=keys.headers("query")).json()["name"] == name
    own = [k["gallery"] for k in api.get("/keys", headers=other).json()]
    assert own and set(own) == {"other"}


def test_keys_api_and_revocation(api: httpx.Client, keys: Keys, serve_db: str) -> None:
    admin = keys.headers("admin")
    r = api.post("/keys", json={"role": "query", "label": "door"}, headers=admin)
    assert r.status_code == 201
    made = r.json()
    assert made["key"].startswith("cnk_") and made["gallery"] == "default"
    fresh = {"X-API-Key": made["key"]}
    assert api.get("/info", headers=fresh).status_code == 200
    listed = api.get("/keys", headers=admin).json()
    assert made["id"] in [k["id"] for k in listed] and all("key" not in k for k in listed)
    is_problem(api.post("/keys", json={"role": "root"}, headers=admin), 422, "invalid-input")
    r = api.delete(f"/keys/{made['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["revoked_at"]
    is_problem(api.get("/info", headers=fresh), 401, "unauthorized")
    other_gallery_key = api.get("/keys", headers=keys.headers("other_admin")).json()[0]["id"]
    is_problem(api.delete(f"/keys/{other_gallery_key}", headers=admin), 404, "not-found")


def test_keys_cli(serve_db: str, api: httpx.Client) -> None:
    key = make_key(serve_db, "query", gallery="cli")
    assert key.startswith("cnk_") and " " not in key
    listing = cnnkit("serve", "keys", "list", "--db", serve_db).stdout
    assert "cli" in listing and key not in listing
    assert api.get("/info", headers={"X-API-Key": key}).json()["gallery"] == "cli"
    key_id = [line.split()[0] for line in listing.splitlines() if " cli " in line][-1]
    cnnkit("serve", "keys", "revoke", key_id, "--db", serve_db)
    is_problem(api.get("/info", headers={"X-API-Key": key}), 401, "unauthorized")
    done = cnnkit("serve", "keys", "revoke", "99999", "--db", serve_db, check=False)
    assert done.returncode == 2 and done.stderr.startswith("error: no key with id 99999")
    done = cnnkit("serve", "keys", "create", "--role", "root", "--db", serve_db, check=False)
    assert done.returncode == 2


def test_audit_records_who_did_what(
    api: httpx.Client, keys: Keys, new_person, photos: dict[str, bytes]
) -> None:
    pid, name = new_person("audited")
    r = api.post(
        f"/persons/{pid}/photos",
        files={"file": ("g.png", photos["grace"])},
        headers=keys.headers("enroll"),
    )
    assert r.status_code == 201, r.text
    enroll_id = next(
        k["id"]
        for k in api.get("/keys", headers=keys.headers("admin")).json()
        if k["role"] == "enroll"
    )
    rows = api.get("/audit", headers=keys.headers("admin")).json()
    mine = [row for row in rows if row["person_id"] == pid]
    assert {row["action"] for row in mine} >= {"person.create", "photo.add"}
    assert all(row["key_id"] == enroll_id and row["at"] for row in mine)
    assert all(len(str(row)) < 500 for row in rows)  # ids and names, never image data
