"""The access-record log's HTTP endpoints, on the assembled app: every endpoint, its proofs
checked with the RFC 9162 verifiers against the published head, and bad parameters as RFC 9457
problems; then schemathesis over the log's part of the OpenAPI document."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from mynumber.app import Container, create_app
from mynumber.cli.log import access_log
from mynumber.network.interfaces import canonical_json
from mynumber.network.log import (
    MerkleAccessLog,
    leaf_hash,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
)

PROBLEM = "application/problem+json"


def entry_for(i: int) -> bytes:
    return canonical_json({"serial": f"s{i:08d}", "task": "bekkyo2-1", "note": "提供"})


@pytest.fixture
def app(container: Container) -> FastAPI:
    return create_app(container=container)


@pytest.fixture
def alog(container: Container) -> MerkleAccessLog:
    return access_log(container)


@pytest.fixture
def client(app: FastAPI, alog: MerkleAccessLog, container: Container) -> Iterator[TestClient]:
    with container.databases.unit_of_work("network") as session:
        for i in range(21):
            alog.enqueue(session, f"s{i:08d}", entry_for(i))
    alog.integrate(max_batch=8)
    alog.integrate(max_batch=8)
    alog.integrate()
    yield TestClient(app)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith(PROBLEM)  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status and body["code"] and body["type"]
    return body


def test_checkpoint_and_sth_agree(client: TestClient) -> None:
    vkey = client.get("/log/v1/verifier-key").json()
    note = client.get("/log/checkpoint")
    assert note.status_code == 200 and note.headers["content-type"].startswith("text/plain")
    opened = open_checkpoint(note.text, vkey["vkey"])
    assert opened.origin == vkey["origin"] and opened.size == 21
    sth = client.get("/log/v1/get-sth").json()
    assert sth["tree_size"] == 21 and sth["checkpoint"] == note.text
    assert base64.b64decode(sth["sha256_root_hash"]) == opened.root_hash
    assert sth["timestamp"] > 1_700_000_000_000


def test_proofs_verify_against_the_published_head(client: TestClient) -> None:
    sth = client.get("/log/v1/get-sth").json()
    root = base64.b64decode(sth["sha256_root_hash"])
    for i in (0, 7, 20):
        by_index = client.get("/log/v1/get-proof-by-index", params={"index": i}).json()
        path = [base64.b64decode(p) for p in by_index["audit_path"]]
        assert by_index["tree_size"] == 21
        assert verify_inclusion(leaf_hash(entry_for(i)), i, 21, path, root)
        by_hash = client.get("/log/v1/get-proof-by-hash",
                             params={"hash": b64(leaf_hash(entry_for(i))), "tree_size": 21})
        assert by_hash.json() == by_index
    # An older head: size 8 and 16 were signed on the way.
    old = client.get("/log/v1/get-proof-by-index", params={"index": 3, "tree_size": 8}).json()
    assert old["tree_size"] == 8 and len(old["audit_path"]) == 3
    consistency = client.get("/log/v1/get-sth-consistency", params={"first": 8, "second": 21})
    assert consistency.status_code == 200
    path = [base64.b64decode(p) for p in consistency.json()["consistency"]]
    entries = client.get("/log/v1/get-entries", params={"start": 0, "end": 7}).json()["entries"]
    from mynumber.network.log import merkle_root

    old_root = merkle_root([base64.b64decode(e["leaf_hash"]) for e in entries])
    assert verify_consistency(8, 21, old_root, root, path)
    assert client.get("/log/v1/get-sth-consistency",
                      params={"first": 21, "second": 21}).json() == {"consistency": []}


def test_get_entries(client: TestClient) -> None:
    body = client.get("/log/v1/get-entries", params={"start": 2, "end": 4}).json()
    assert [e["index"] for e in body["entries"]] == [2, 3, 4]
    first = body["entries"][0]
    assert first["serial"] == "s00000002" and first["entry"] == entry_for(2).decode()
    assert base64.b64decode(first["leaf_hash"]) == leaf_hash(first["entry"].encode())
    clipped = client.get("/log/v1/get-entries", params={"start": 19, "end": 5000}).json()
    assert [e["index"] for e in clipped["entries"]] == [19, 20]


@pytest.mark.parametrize(("path", "params", "status", "field"), [
    ("/log/v1/get-proof-by-index", {"index": 21}, 404, "index"),
    ("/log/v1/get-proof-by-index", {"index": 0, "tree_size": 22}, 404, "tree_size"),
    ("/log/v1/get-proof-by-index", {"index": -1}, 422, "index"),
    ("/log/v1/get-proof-by-index", {"index": "x"}, 422, "index"),
    ("/log/v1/get-proof-by-index", {}, 422, "index"),
    ("/log/v1/get-proof-by-hash", {"hash": "not base64!"}, 422, "hash"),
    ("/log/v1/get-proof-by-hash", {"hash": "!" * 43 + "="}, 422, "hash"),
    ("/log/v1/get-proof-by-hash", {"hash": b64(b"short")}, 422, "hash"),
    ("/log/v1/get-proof-by-hash", {"hash": b64(bytes(32))}, 404, "hash"),
    ("/log/v1/get-proof-by-hash", {"hash": b64(leaf_hash(entry_for(20))), "tree_size": 20},
     404, "hash"),
    ("/log/v1/get-proof-by-hash", {"hash": b64(bytes(32)), "tree_size": 99}, 404, "tree_size"),
    ("/log/v1/get-sth-consistency", {"first": 5, "second": 22}, 404, "second"),
    ("/log/v1/get-sth-consistency", {"first": 9, "second": 8}, 404, "first"),
    ("/log/v1/get-sth-consistency", {"first": 1}, 422, "second"),
    ("/log/v1/get-entries", {"start": 5, "end": 4}, 422, "end"),
    ("/log/v1/get-entries", {"start": 21, "end": 30}, 404, "start"),
    ("/log/v1/get-entries", {"start": 0, "end": 2**63}, 422, "end"),
])
def test_bad_parameters_are_problems(client: TestClient, path: str, params: dict[str, object],
                                     status: int, field: str) -> None:
    body = problem(client.get(path, params=params), status)
    assert body["field"] == field


def test_empty_log(app: FastAPI, alog: MerkleAccessLog) -> None:
    client = TestClient(app)
    sth = client.get("/log/v1/get-sth").json()
    assert sth["tree_size"] == 0
    assert sth["sha256_root_hash"] == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    problem(client.get("/log/v1/get-proof-by-index", params={"index": 0}), 404)
    problem(client.get("/log/v1/get-entries", params={"start": 0, "end": 0}), 404)
    assert client.get("/log/v1/get-sth-consistency",
                      params={"first": 0, "second": 0}).json() == {"consistency": []}


def test_openapi_documents_the_log(app: FastAPI) -> None:
    spec = app.openapi()
    ops = {op["operationId"]: op for path, item in spec["paths"].items()
           if path.startswith("/log") for op in item.values()}
    assert set(ops) == {"log_checkpoint", "log_get_sth", "log_get_sth_consistency",
                        "log_get_proof_by_hash", "log_get_proof_by_index", "log_get_entries",
                        "log_verifier_key"}
    for op in ops.values():
        assert op["tags"] == ["access-log"]
        assert {"404", "422"} <= set(op["responses"])


# --- schemathesis over the log's endpoints -------------------------------------------------------

@pytest.fixture
def log_schema(client: TestClient, app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex="^/log")


def test_schemathesis_log_endpoints(log_schema: schemathesis.BaseSchema) -> None:
    for operation in log_schema.get_all_operations():
        op = operation.ok()

        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            # end < start or a size beyond the tree are schema-valid but rightly refused
            # (422 / 404 problems), as in tests/e2e.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        run()
