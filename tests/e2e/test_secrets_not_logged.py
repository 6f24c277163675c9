"""No secret reaches the server's log, even at debug level: API keys sent either way (valid,
unknown, revoked), webhook signing secrets (created and rotated) and the signatures of failing
deliveries."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable

import httpx

from tests.e2e.conftest import ServerProcess, run_tierkit
from tests.support.receiver import Receiver, receiver  # noqa: F401 - the fixture
from tests.support.secret_key import TEST_SECRET_KEY

StartServer = Callable[..., ServerProcess]


def test_server_log__keys_and_webhook_secrets_in_use__none_of_them_logged(
    empty_database_url: str,
    start_server: StartServer,
    receiver: Receiver,  # noqa: F811 - the fixture
) -> None:
    # Given a server logging at debug level and a receiver that fails every delivery
    run_tierkit("migrate", database_url=empty_database_url)
    key = run_tierkit("keys", "create", "-e", "development", database_url=empty_database_url)
    revoked = run_tierkit("keys", "create", "-e", "development", database_url=empty_database_url)
    secret, revoked_secret = key.stdout.strip(), revoked.stdout.strip()
    unknown = "tk_sec_" + secrets.token_urlsafe(24)
    env = {"TIERKIT_LOG_LEVEL": "debug", "TIERKIT_WEBHOOK_RETRY_SECONDS": "[0.2, 0.2]"}
    server = start_server("serve", database_url=empty_database_url, env=env)
    receiver.status = 500
    bearer = {"Authorization": f"Bearer {secret}"}

    # When keys are used in both headers, refused, revoked and used again
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/v1/features", headers=bearer).status_code == 200
        assert http.get("/v1/features", headers={"X-Api-Key": secret}).status_code == 200
        assert http.get("/v1/features", headers={"X-Api-Key": unknown}).status_code == 401
        keys = http.get("/v1/api-keys", headers=bearer).json()["data"]
        for listed in keys:
            if listed["hint"].endswith(revoked_secret[-4:]):
                assert http.delete(f"/v1/api-keys/{listed['id']}", headers=bearer).is_success
        assert http.get("/v1/plans", headers={"X-Api-Key": revoked_secret}).status_code == 401

        # and an endpoint is created, its secret rotated, and deliveries to it fail
        created = http.post("/v1/webhooks", headers=bearer, json={"url": receiver.url})
        assert created.status_code == 201, created.text
        endpoint = created.json()
        rotated = http.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", headers=bearer)
        assert rotated.status_code == 200, rotated.text
        feature = {"key": "sso", "name": "SSO", "type": "boolean"}
        assert http.post("/v1/features", headers=bearer, json=feature).status_code == 201
        deadline = time.monotonic() + 20
        while len(receiver.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(receiver.requests) >= 2  # a failed delivery and its retry
    server.stop()

    # Then the log shows the requests, and none of the secrets, nor the key sealing them
    log = server.log.read_text()
    assert "/v1/webhooks" in log
    assert "401" in log
    signing = [endpoint["secret"], rotated.json()["secret"]]
    hidden = [secret, revoked_secret, unknown, *signing, TEST_SECRET_KEY]
    hidden += [s.removeprefix("whsec_") for s in signing]
    hidden += [base64.b64decode(s.removeprefix("whsec_")).hex() for s in signing]
    assert [h for h in hidden if h in log] == []
    assert secret[-12:] not in log  # not even a long tail of a key
