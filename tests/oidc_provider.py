"""A real OpenID Connect provider for the SSO tests: node-oidc-provider (tests/oidc/), started on a
free port of 127.0.0.1, with people read from a JSON file the test rewrites."""

import copy
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).parent / "oidc"
CLIENT_ID = "chatsite-test"
CLIENT_SECRET = "test-only-client-secret-5d1e"
PROVIDER_ID = "testidp"
PEOPLE = {
    "carol": {
        "email": "carol@example.com",
        "email_verified": True,
        "name": "Carol Example",
        "preferred_username": "carol",
        "groups": ["chat-users", "engineering"],
    },
    "dave": {
        "email": "dave@example.com",
        "email_verified": True,
        "name": "Dave Example",
        "preferred_username": "dave",
        "groups": ["contractors"],
    },
}


def missing_reason() -> str | None:
    """Why the provider cannot start here (printed by the skip), or None."""
    if not shutil.which("node"):
        return "Node.js is not installed: the SSO end-to-end tests are SKIPPED (install nodejs and npm)"
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        return "oidc-provider is not installed: the SSO end-to-end tests are SKIPPED (run: npm ci --prefix tests/oidc)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class IdentityProvider:
    def __init__(self, users_file: Path, redirect_uri: str):
        self.users_file = users_file
        self.port = _free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.set_people(PEOPLE)
        env = {
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "PORT": str(self.port),
            "USERS_FILE": str(users_file),
            "CLIENT_ID": CLIENT_ID,
            "CLIENT_SECRET": CLIENT_SECRET,
            "REDIRECT_URIS": redirect_uri,
            "NODE_ENV": "development",
        }
        self.process = subprocess.Popen(  # noqa: S603 (our own script)
            [shutil.which("node"), str(HERE / "provider.mjs")],
            cwd=HERE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_ready()

    def _wait_until_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode(errors="replace")
                raise RuntimeError(f"oidc-provider exited at start: {output}")
            try:
                if requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.05)  # the process is starting; nothing to wait on but the port
        self.stop()
        raise RuntimeError(f"oidc-provider did not answer within {timeout} s")

    def set_people(self, people: dict) -> None:
        self.users_file.write_text(json.dumps(people))

    def app(self, **settings) -> dict:
        """This provider as an entry of SOCIALACCOUNT_PROVIDERS' openid_connect APPS."""
        return {
            "provider_id": PROVIDER_ID,
            "name": "Test IdP",
            "client_id": CLIENT_ID,
            "secret": CLIENT_SECRET,
            "settings": {"server_url": self.issuer, "oauth_pkce_enabled": True, **settings},
        }

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def identity_provider(live_server, settings, tmp_path):
    """The provider, registered with chatsite as "Test IdP" (sign-in button "Sign in with Test IdP")."""
    if reason := missing_reason():
        pytest.skip(reason)
    callback = f"{live_server.url}/accounts/oidc/{PROVIDER_ID}/login/callback/"
    provider = IdentityProvider(tmp_path / "people.json", callback)
    app = provider.app(scope=["openid", "profile", "email", "groups"])
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"OAUTH_PKCE_ENABLED": True, "APPS": [app]}}
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["form-action"] = ["'self'", provider.issuer]  # as settings.py adds OIDC_ORIGINS
    settings.CONTENT_SECURITY_POLICY = policy
    yield provider
    provider.stop()
