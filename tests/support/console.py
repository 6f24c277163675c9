"""A console client for tests: signs in, carries the session cookie and each page's CSRF token.

The session cookie is `Secure`; httpx's jar keeps Secure cookies from plain-HTTP replies but
would not send them back over http://127.0.0.1, so the client sends them itself.
"""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery staple"


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found is not None, "the page has no form with a CSRF token"
    return html.unescape(found.group(1))


class ConsoleClient:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def close(self) -> None:
        self.http.close()

    def _keep(self, response: httpx.Response) -> httpx.Response:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0].strip('"')
            if "max-age=0" in header.lower() or "expires=thu, 01 jan 1970" in header.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    def cookie_header(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def get(self, path: str, **params: Any) -> httpx.Response:
        response = self._keep(
            self.http.get(path, params=params or None, headers=self.cookie_header())
        )
        if response.status_code == 200 and 'name="csrf_token"' in response.text:
            self.csrf = csrf_of(response.text)
        return response

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: str | None = None
    ) -> httpx.Response:
        form = {"csrf_token": self.csrf if csrf is None else csrf, **(data or {})}
        return self._keep(self.http.post(path, data=form, headers=self.cookie_header()))

    def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        self.get("/console/login")
        response = self.post("/console/login", {"email": email, "password": password})
        if response.status_code == 303:
            self.get(response.headers["location"])
        return response
