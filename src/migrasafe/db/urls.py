"""Database URLs, and never a password in what migrasafe prints of them."""

from __future__ import annotations

import re

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from migrasafe.errors import DatabaseError

# user:password@ in anything that looks like a URL; the password may hold ":" or "/".
_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)[^\s]*(?P<tail>@)")
# password=... as a URL query parameter or a libpq keyword (a DSN echoed by a driver).
_SECRET_PARAMETER = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|sslpassword)\s*=\s*)(?P<value>'[^']*'|[^&\s'\"]+)",
    re.IGNORECASE,
)


def _secrets(url: str | URL) -> list[str]:
    """The URL's password and secret query values, however the URL is spelled."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (sa_exc.ArgumentError, ValueError):
        text = str(url)
        found = [m.group("value") for m in _SECRET_PARAMETER.finditer(text)]
        return found + _unparsed_password(text)
    found = [str(parsed.password)] if parsed.password else []
    for key, value in parsed.query.items():
        if key.lower() in ("password", "passwd", "pwd", "sslpassword"):
            found += [value] if isinstance(value, str) else list(value)
    return [secret for secret in found if secret]


def _unparsed_password(text: str) -> list[str]:
    """In a URL that does not parse (``postgresql:/app:pw@h``, ``app:pw@h/db``), whatever
    stands between the first ``:`` of the userinfo and the last ``@``: never echoed."""
    userinfo, at, _rest = text.rpartition("@")
    if not at:
        return []
    userinfo = re.sub(r"^[a-zA-Z][\w+.-]*:/+", "", userinfo)
    _user, colon, password = userinfo.partition(":")
    return [password] if colon and password else []


def scrub(text: str, url: str | URL | None = None) -> str:
    """Remove every password from a message: the URL's, userinfo, ``password=`` parameters."""
    for secret in _secrets(url) if url is not None else []:
        text = text.replace(secret, "***")
    text = _PASSWORD_IN_URL.sub(r"\g<head>***\g<tail>", text)
    return _SECRET_PARAMETER.sub(r"\g<key>***", text)


def redact(url: str | URL) -> str:
    """The URL with its password masked (userinfo and query), even when it does not parse."""
    if isinstance(url, URL):
        return scrub(url.render_as_string(hide_password=True), url)
    try:
        return scrub(make_url(url).render_as_string(hide_password=True), url)
    except (sa_exc.ArgumentError, ValueError):
        return scrub(url, url)


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - "a:b@c" in an unescaped password fails here, not later
    except (sa_exc.ArgumentError, ValueError) as exc:
        raise DatabaseError(
            f"malformed database URL {redact(url)!r}: expected "
            "dialect[+driver]://user:password@host/dbname or sqlite:///path "
            "(escape @, : and / in a password as %40, %3A and %2F)"
        ) from exc
    return parsed


def describe_error(exc: BaseException, url: str | URL) -> str:
    """A one-line description of a database error, without the password."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        text = f"{type(exc.orig).__name__}: {exc.orig}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return scrub(" ".join(text.split()), url)
