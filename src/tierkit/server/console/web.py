"""What every console page shares: the route class (HTML errors, security headers, sign-in
redirects), the session and CSRF dependencies, the templates."""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from tierkit import __version__
from tierkit.server.api.dependencies import ServicesDep
from tierkit.server.api.errors import problems_of
from tierkit.server.api.json_route import StrictJSONRoute
from tierkit.server.console.forms import Problems
from tierkit.server.services.audit import current_actor
from tierkit.server.services.console_users import SESSION_LIFETIME, ConsoleSession
from tierkit.server.services.errors import AuthenticationFailed, DomainError, PermissionDenied

PREFIX = "/console"
SESSION_COOKIE = "tierkit_console"
SIGN_IN_CSRF_COOKIE = "tierkit_console_csrf"
_HERE = Path(__file__).parent

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    """The browser has no live session: it goes to the sign-in page, then back to `next`."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@functools.cache
def templates() -> Jinja2Templates:
    built = Jinja2Templates(directory=str(_HERE / "templates"))
    built.env.globals["version"] = __version__
    built.env.globals["prefix"] = PREFIX
    built.env.filters["segment"] = segment
    return built


def segment(value: str) -> str:
    """A key as one path segment (company keys are external ids and may hold `/`)."""
    return quote(value, safe="")


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    context.setdefault("problems", Problems())
    return templates().TemplateResponse(request, template, context, status_code=status_code)


def page(
    request: Request,
    session: ConsoleSession,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    """A signed-in page: the header's user, environment switcher and CSRF token come along."""
    services = request.app.state.services
    context = {
        "session": session,
        "csrf_token": session.csrf_token,
        "environments": [env.name for env in services.environments.list_environments()],
        **context,
    }
    return render(request, template, context, status_code)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "message": message}, status_code=status)


def redirect(path: str) -> RedirectResponse:
    """After a POST: see the result with a GET (303)."""
    return RedirectResponse(path, status_code=303)


def is_local_next(path: str) -> bool:
    """Only console pages of this server are places to go back to after signing in."""
    return path.startswith(PREFIX) and not path.startswith("//") and "\\" not in path


class ConsoleRoute(StrictJSONRoute):
    """HTML answers for everything that goes wrong (never the API's JSON, never a 500 for bad
    input), sign-in redirects, and the security headers on every reply."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired as error:
                target = f"{PREFIX}/login"
                if error.next_path and error.next_path != PREFIX:
                    target += f"?next={quote(error.next_path, safe='')}"
                response = redirect(target)
            except (DomainError, RequestValidationError) as error:
                if isinstance(error, RequestValidationError):
                    status, message = _query_problem(error)
                else:
                    status, message, _ = problems_of(error)
                response = error_page(request, status, message)
            except StarletteHTTPException as error:
                response = error_page(request, error.status_code, str(error.detail))
            response.headers.update(SECURITY_HEADERS)
            return response

        return route


def _query_problem(error: RequestValidationError) -> tuple[int, str]:
    """A malformed key in the path names nothing that exists (404); a bad query is a 400."""
    first = error.errors()[0]
    location = tuple(first.get("loc", ()))
    if location[:1] == ("path",):
        return 404, "There is no such page: check the address."
    field = ".".join(str(part) for part in location[1:])
    return 400, f"The address's `{field}` is not valid: {first.get('msg', 'check it')}."


def console_session(request: Request, services: ServicesDep) -> ConsoleSession:
    token = request.cookies.get(SESSION_COOKIE, "")
    try:
        return services.console_users.get_session(token)
    except AuthenticationFailed:
        path = request.url.path
        if request.method == "GET" and request.url.query:
            path += f"?{request.url.query}"
        raise SignInRequired(path if request.method == "GET" else "") from None


SessionDep = Annotated[ConsoleSession, Depends(console_session)]


def csrf_matches(sent: object, expected: str) -> bool:
    return isinstance(sent, str) and bool(sent) and hmac.compare_digest(sent, expected)


def csrf_failed() -> PermissionDenied:
    return PermissionDenied(
        "The form's security token is missing or out of date: go back, reload the page and "
        "send it again.",
        code="csrf_failed",
    )


async def posted_form(request: Request, session: SessionDep) -> FormData:
    """The POSTed form of a signed-in browser, once its CSRF token is checked (the hidden
    `csrf_token` field, or the `X-CSRF-Token` header of htmx requests). The request's changes
    are audited as the console user's: this context is the one the route's thread copies."""
    form = await request.form()
    sent = form.get("csrf_token") or request.headers.get("x-csrf-token")
    if not csrf_matches(sent, session.csrf_token):
        raise csrf_failed()
    current_actor.set(session.actor)
    return form


FormDep = Annotated[FormData, Depends(posted_form)]


def cookie_is_secure(request: Request) -> bool:
    """Cookies are `Secure` over HTTPS and on loopback (browsers keep Secure cookies for
    http://localhost and 127.0.0.1); a plain-HTTP address elsewhere would never get them
    back, so there they are not (and the sign-in page warns)."""
    if request.url.scheme == "https":
        return True
    host = request.url.hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path=PREFIX,
        secure=cookie_is_secure(request),
        httponly=True,
        samesite="lax",
    )


def set_sign_in_csrf_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SIGN_IN_CSRF_COOKIE,
        token,
        path=PREFIX,
        secure=cookie_is_secure(request),
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=PREFIX,
        secure=cookie_is_secure(request),
        httponly=True,
        samesite="lax",
    )
