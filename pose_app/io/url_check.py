"""Why a URL that OpenCV could not open failed, in words a user can act on.

OpenCV only says that a capture did not open, whatever the reason; its callers used to answer
"not a video, or a format/codec OpenCV cannot read" even when nothing listens on the port. After
such a failure, `url_problem` asks the network the way OpenCV's FFmpeg backend would have: the
host's name, a TCP connection to its port, and for http(s) the server's answer to a request for
the first bytes. Only when all of these succeed is the content itself to blame (the caller's
codec message). Connectionless schemes (udp://, srt://) cannot be asked and get None.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urlsplit

# How long the check waits for a name, a connection and an answer (each).
CHECK_TIMEOUT_S = 5.0
# The ports FFmpeg uses for a URL without one.
DEFAULT_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322, "rtmp": 1935}
CONNECTIONLESS_SCHEMES = ("udp", "srt")


def url_problem(url: str, timeout_s: float = CHECK_TIMEOUT_S) -> str | None:
    """Why `url` cannot be read, as the end of one line ("the server could not be reached:
    connection refused by 127.0.0.1:9 (nothing listens on that port)"); None when the server
    answered and served something (then the content or its codec is the problem) or when the
    scheme cannot be checked."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        host, port = parts.hostname, parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError as error:  # a port that is not a number
        return f"not a valid URL: {error}"
    if scheme in CONNECTIONLESS_SCHEMES or not host or port is None:
        return None
    where = f"{host}:{port}"
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        return f"host not found: {host} ({error.strerror or error})"
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except ConnectionRefusedError:
        return f"the server could not be reached: connection refused by {where} (nothing listens on that port)"
    except TimeoutError:
        return f"the server could not be reached: no answer from {where} within {timeout_s:g} s (timeout)"
    except OSError as error:
        return f"the server could not be reached: {where}: {error.strerror or error}"
    if scheme in ("http", "https"):
        return _http_problem(scheme, host, port, parts, timeout_s)
    return None


def _http_problem(scheme: str, host: str, port: int, parts, timeout_s: float) -> str | None:
    """The server's answer to a request for the URL's first bytes, when it is not content."""
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    connection = connection_class(host, port, timeout=timeout_s)
    try:
        connection.request("GET", path, headers={"Range": "bytes=0-1023", "User-Agent": "pose-app"})
        response = connection.getresponse()
        status, reason = response.status, response.reason
        empty = status < 300 and not response.read(1)
    except ssl.SSLError as error:
        return f"the server at {host}:{port} refused a secure connection: {error.reason or error}"
    except (OSError, http.client.HTTPException) as error:
        return f"the server at {host}:{port} did not answer the request: {error}"
    finally:
        connection.close()
    if status >= 400:
        return f"the server answered {status} {reason}".rstrip()
    if empty:
        return f"the server answered {status} {reason} with no content".rstrip()
    return None
