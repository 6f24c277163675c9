"""Signing in and out, and the environment switcher."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from tierkit.server.api.dependencies import ServicesDep
from tierkit.server.console.forms import Problems, text
from tierkit.server.console.web import (
    PREFIX,
    SESSION_COOKIE,
    SIGN_IN_CSRF_COOKIE,
    ConsoleRoute,
    FormDep,
    SessionDep,
    clear_session_cookie,
    cookie_is_secure,
    csrf_failed,
    csrf_matches,
    is_local_next,
    redirect,
    render,
    set_session_cookie,
    set_sign_in_csrf_cookie,
)
from tierkit.server.services.environments import DEFAULT_ENVIRONMENTS
from tierkit.server.services.errors import AuthenticationFailed

SECTIONS = frozenset({"companies", "features", "plans", "audit", "webhooks"})

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def _sign_in_page(
    request: Request, email: str, next_path: str, problems: Problems, status_code: int = 200
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {
            "email": email,
            "next": next_path,
            "csrf_token": token,
            "problems": problems,
            "insecure": not cookie_is_secure(request),
        },
        status_code,
    )
    set_sign_in_csrf_cookie(request, response, token)
    return response


@router.get("")
def console_home(session: SessionDep) -> Response:
    return redirect(f"{PREFIX}/companies")


@router.get("/login")
def sign_in_form(request: Request, services: ServicesDep, next: str = "") -> Response:
    next_path = next if is_local_next(next) else ""
    try:
        services.console_users.get_session(request.cookies.get(SESSION_COOKIE, ""))
    except AuthenticationFailed:
        return _sign_in_page(request, "", next_path, Problems())
    return redirect(next_path or f"{PREFIX}/companies")  # already signed in


@router.post("/login")
async def sign_in(request: Request, services: ServicesDep) -> Response:
    # The sign-in form has no session yet: its CSRF token is a cookie it must match.
    form = await request.form()
    if not csrf_matches(form.get("csrf_token"), request.cookies.get(SIGN_IN_CSRF_COOKIE, "")):
        raise csrf_failed()
    email = text(form, "email") or ""
    password = form.get("password")
    next_path = text(form, "next") or ""
    next_path = next_path if is_local_next(next_path) else f"{PREFIX}/companies"
    environment = DEFAULT_ENVIRONMENTS[0]
    try:
        if not email or not isinstance(password, str) or not password:
            raise AuthenticationFailed(
                "Enter your email and your password.", code="invalid_credentials"
            )
        _, token = await run_in_threadpool(
            services.console_users.sign_in, email, password, environment
        )
    except AuthenticationFailed as error:
        problems = Problems(401, error.message, {"password": error.message})
        return _sign_in_page(request, email, next_path, problems, 401)
    response = redirect(next_path)
    set_session_cookie(request, response, token)
    response.delete_cookie(SIGN_IN_CSRF_COOKIE, path=PREFIX)
    return response


@router.post("/logout")
def sign_out(request: Request, form: FormDep, services: ServicesDep) -> Response:
    services.console_users.sign_out(request.cookies.get(SESSION_COOKIE, ""))
    response = redirect(f"{PREFIX}/login")
    clear_session_cookie(request, response)
    return response


@router.post("/environment")
def switch_environment(
    request: Request, form: FormDep, session: SessionDep, services: ServicesDep
) -> Response:
    environment = text(form, "environment") or session.environment
    services.console_users.switch_environment(request.cookies.get(SESSION_COOKIE, ""), environment)
    back = text(form, "back") or ""
    # Another environment has other objects: a page about one object goes back to its list.
    section = back.removeprefix(PREFIX + "/").split("/", 1)[0].split("?", 1)[0]
    return redirect(f"{PREFIX}/{section if section in SECTIONS else 'companies'}")
