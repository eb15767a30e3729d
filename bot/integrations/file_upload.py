"""Writing a file to the upload session Teams opens in the person's OneDrive (FileConsentCard flow).

In a personal chat Teams asks the person before a bot may send them a file; when they allow it, the
`fileConsent/invoke` carries an `uploadUrl` (a pre-authorised OneDrive upload session) where the bot
PUTs the bytes, then it posts a FileInfoCard pointing at `contentUrl`. See docs/privacy.md.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

import aiohttp

log = logging.getLogger(__name__)

# One request carries the whole file: OneDrive accepts up to 60 MiB per request, exports are far smaller.
MAX_SINGLE_PUT = 60 * 1024 * 1024
TIMEOUT_SECONDS = 30


class UploadFailed(Exception):
    """The file did not reach the upload session (the person is told; nothing was recorded)."""


def upload_url_allowed(url: object) -> bool:
    """Teams hands out HTTPS upload sessions; plain HTTP only to this machine (local test channels)."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


async def upload_file(upload_url: str, content: bytes) -> None:
    """PUT `content` to an upload session in one request; raise UploadFailed otherwise."""
    if not upload_url_allowed(upload_url):
        raise UploadFailed("the upload address is not an https URL (or http to this machine)")
    if not content or len(content) > MAX_SINGLE_PUT:
        raise UploadFailed("the file is empty or too large for one request")
    size = len(content)
    headers = {"Content-Range": f"bytes 0-{size - 1}/{size}", "Content-Type": "application/octet-stream"}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)) as session, \
                session.put(upload_url, data=content, headers=headers) as response:
            if response.status not in (200, 201):
                raise UploadFailed(f"the upload session answered HTTP {response.status}")
    except (aiohttp.ClientError, TimeoutError) as error:
        # Only the error's type: the URL is a bearer capability for the person's OneDrive.
        log.warning("file upload failed: %s", type(error).__name__)
        raise UploadFailed(type(error).__name__) from error
