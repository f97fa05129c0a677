"""Defences that sit in front of every view: the client's address, safe redirects, and refusing malformed requests."""

import binascii
import contextlib
import shutil
import tempfile
from base64 import b64decode
from email.message import Message
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import (
    MAX_TOTAL_HEADER_SIZE,
    ChunkIter,
    InterBoundaryIter,
    LazyStream,
    MultiPartParser,
    exhaust,
)
from django.utils.http import parse_header_parameters, url_has_allowed_host_and_scheme

from common.errors import error_response


def client_ip(request: HttpRequest) -> str:
    """The address of the person, not of our own proxies.

    Behind TRUSTED_PROXY_COUNT proxies, each of which appends the address it saw to
    X-Forwarded-For, the person is that many entries from the right. Anything further left was
    written by the client and is not trusted.
    """
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def safe_next(request: HttpRequest, fallback: str) -> str:
    """The form's `next` address when it stays on this site, else `fallback`.

    A `next` from another site would turn our redirect into an open redirect (a link that
    looks like ours and lands on a phishing page), so only same-site addresses are followed.
    """
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return next_url if allowed else fallback


class RejectMalformedInputMiddleware:
    """400 for a query string or form body that is not valid UTF-8 or carries a NUL character.

    Django would decode such bytes to U+FFFD and store the result; PostgreSQL refuses NUL in
    text with a server error. Neither is something a browser sends, so it is refused whole,
    before any view runs. In a multipart body the same holds for every part's headers (field
    names, file names) and every value that is not a file; what a file holds is the business
    of the view that reads it (an import is JSON, checked there).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        if not _clean_urlencoded(query.encode("latin-1", "replace")):
            return error_response(request, 400, "The address contains characters that are not valid text.")
        # Reading the body applies DATA_UPLOAD_MAX_MEMORY_SIZE first (413 above it).
        form = request.method == "POST" and request.content_type == "application/x-www-form-urlencoded"
        if form and not _clean_urlencoded(request.body):
            return error_response(request, 400, "The form contains characters that are not valid text.")
        if request.method == "POST" and request.content_type == "multipart/form-data" and not _clean_multipart(request):
            return error_response(request, 400, "The form contains characters that are not valid text.")
        return self.get_response(request)


def _clean_urlencoded(data: bytes) -> bool:
    for pair in data.split(b"&"):
        for part in pair.split(b"=", 1):
            raw = unquote_to_bytes(part.replace(b"+", b" "))
            if b"\x00" in raw:
                return False
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return False
    return True


def _clean_multipart(request: HttpRequest) -> bool:
    """Check a multipart body's text, then hand the body to Django's parser (request.POST, FILES).

    Django's parser turns bytes that are not UTF-8 into U+FFFD as it goes, so the raw body is
    checked first: copied into a file that stays in memory while small and spills to disk for
    an upload. A body Django cannot parse at all (no boundary, say) is left to Django: 400.
    """
    _, params = parse_header_parameters(request.META.get("CONTENT_TYPE", ""))
    boundary = params.get("boundary", "")
    if not boundary or not boundary.isascii():
        return True
    with tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE) as body:
        shutil.copyfileobj(request, body, _CHUNK)
        body.seek(0)
        if not _clean_parts(body, boundary.encode("ascii")):
            return False
        body.seek(0)
        parser = MultiPartParser(request.META, body, request.upload_handlers, request.encoding)
        # As HttpRequest._load_post_and_files would, from the copy (the request is read).
        request._post, request._files = parser.parse()
    return True


_CHUNK = 64 * 1024


def _clean_parts(body, boundary: bytes) -> bool:
    """Every part's headers are text, and so is every value that is not a file."""
    for part in InterBoundaryIter(LazyStream(ChunkIter(body, _CHUNK)), b"--" + boundary):
        head = part.read(MAX_TOTAL_HEADER_SIZE)
        end = head.find(b"\r\n\r\n")
        if end == -1:  # the preamble, the end, or a part Django refuses or skips
            exhaust(part)
            continue
        headers = _headers(head[:end])
        if headers is None:
            return False
        disposition = headers.get("content-disposition", "")
        if parse_header_parameters(disposition)[1].get("filename"):
            exhaust(part)  # a file: its bytes are the view's to judge
            continue
        base64 = headers.get("content-transfer-encoding", "").strip().lower() == "base64"
        if not _clean_value(head[end + 4 :], part, base64=base64):
            return False
    return True


def _headers(raw: bytes) -> dict[str, str] | None:
    """A part's headers by lower-case name, or None when they are not text. A parameter in
    RFC 2231 form (`filename*=UTF-8''%FF`) holds percent-encoded bytes, which must be text too."""
    if b"\x00" in raw or not _decodes(raw):
        return None
    headers = {}
    for line in raw.decode().split("\r\n"):
        name, _, value = line.partition(":")
        message = Message()
        message["content-disposition"] = value
        for _, parameter in (message.get_params(header="content-disposition") or [])[1:]:
            if isinstance(parameter, tuple):
                charset, _, text = parameter
                decoded = bytes(text, "raw-unicode-escape")
                if b"\x00" in decoded or not _decodes(decoded, charset or "us-ascii"):
                    return None
        headers[name.strip().lower()] = value
    return headers


def _clean_value(start: bytes, part, *, base64: bool) -> bool:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    value = start + part.read(limit)
    if limit is not None and len(value) > limit:
        exhaust(part)
        return True  # too large: Django answers 413 when it parses the body
    if base64:
        with contextlib.suppress(binascii.Error):
            value = b64decode(value)  # as Django does; a value that is not base64 stays as sent
    return b"\x00" not in value and _decodes(value)


def _decodes(data: bytes, encoding: str = "utf-8") -> bool:
    try:
        data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return False
    return True
