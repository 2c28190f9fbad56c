"""The request loop: one HTTP exchange with the registry, authorised, and retried when it failed
transiently (`retry.retry_loop`). The only per-request retry in the pipe (budget `retry.REQUEST_RETRIES`).
"""
from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from typing import Any, Callable
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.ssl_ import create_urllib3_context

from ..errors import RegistryFailure
from ..retry import FIRST_CONTACT, REQUEST_RETRIES, RetryPolicy, retry_loop
from .answers import connection_failure, failure, is_loopback
from .auth import Anonymous, Auth

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0
# A chunk of 16 MiB needs a few seconds even on a slow uplink; a registry silent for longer than
# this is treated as a dropped connection, and the upload resumes from what it acknowledged.
READ_TIMEOUT = 120.0
TIMEOUTS = (CONNECT_TIMEOUT, READ_TIMEOUT)
PROBE_TIMEOUT = 5.0


def speaks_tls(registry: str) -> bool | None:
    """Whether the registry's port completes a TLS handshake: the scheme only, asked with no CA loaded
    (a CA bundle costs ~40 ms of CPU to load, and a plain-HTTP port never needs it); the certificate is
    checked by the request that follows. None when nothing answers in time."""
    where = urlsplit(f"//{registry}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((where.hostname or "", where.port or 443), timeout=PROBE_TIMEOUT) as sock, \
                context.wrap_socket(sock):
            return True
    except (ssl.SSLError, ConnectionResetError):  # a plain-HTTP server answers a ClientHello with 400, or drops it
        return False
    except OSError:
        return None


class CaSession(requests.Session):
    """A session whose CA file (REGISTRY_CA_FILE) wins over the environment's.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's own `verify`; the
    environment still gives the proxies.
    """

    def __init__(self, ca_file: str | None) -> None:
        super().__init__()
        self.ca_file = ca_file
        if ca_file:
            self.verify = ca_file

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.ca_file:
            settings["verify"] = self.ca_file
        return settings


class OneContextAdapter(HTTPAdapter):
    """Every HTTPS connection of the session shares one SSL context, its CA bundle loaded once, when the
    first one is made: urllib3 otherwise loads the bundle again for each new connection (~40 ms of CPU
    each, and a push opens several)."""

    def __init__(self, **kwargs: Any) -> None:
        self.context = create_urllib3_context()
        self.loaded: str | None = None  # the CA file or directory in the context
        self.loads = 0
        self._lock = threading.Lock()
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, ssl_context=self.context, **kwargs)

    def cert_verify(self, conn, url, verify, cert):  # type: ignore[no-untyped-def]
        super().cert_verify(conn, url, verify, cert)
        where = getattr(conn, "ca_certs", None) or getattr(conn, "ca_cert_dir", None)
        if where is None or getattr(conn, "conn_kw", {}).get("ssl_context") is not self.context:
            return  # plain HTTP, no verification, or a pool of a proxy: urllib3's own way
        with self._lock:
            if self.loaded is None:
                self.context.load_verify_locations(**({"capath": where} if os.path.isdir(where) else
                                                      {"cafile": where}))
                self.loaded = where
                self.loads += 1
        if where == self.loaded:
            conn.ca_certs = conn.ca_cert_dir = None  # in the context already


class Transport:
    """HTTP to one registry: its scheme, its session, its credentials; thread-safe."""

    def __init__(self, registry: str, *, ca_file: str | None = None, policy: RetryPolicy = REQUEST_RETRIES,
                 first_contact: RetryPolicy = FIRST_CONTACT, sleep: Callable[[float], None] = time.sleep,
                 parallel: int = 4) -> None:
        self.registry = registry
        self.ca_file = ca_file
        self.policy = policy
        self.first_contact = first_contact
        self.answered = False  # the registry answered once: from then on, a lost answer is worth more patience
        self.sleep = sleep
        self.session = CaSession(ca_file)
        adapter = OneContextAdapter(pool_connections=2, pool_maxsize=parallel + 4, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.base = f"https://{registry}"
        self.auth: Auth = Anonymous()

    def url(self, path_or_url: str) -> str:
        return urljoin(self.base + "/", path_or_url)

    def discover(self, what: str) -> requests.Response:
        """`GET /v2/` unauthenticated, settling the scheme on the way: https, or plain http on loopback
        only, as docker allows (with a CA file TLS was meant, so a TLS failure is not tried in plain)."""
        refused_tls: requests.exceptions.SSLError | None = None
        loopback = is_loopback(self.registry)
        if loopback and not self.ca_file and speaks_tls(self.registry) is False:
            self.base = f"http://{self.registry}"
        elif loopback:
            try:
                response = self.session.get(self.url("/v2/"), timeout=TIMEOUTS)
                self.answered = True
                return response
            except requests.exceptions.SSLError as exc:
                if not self.ca_file:
                    self.base = f"http://{self.registry}"
                    refused_tls = exc
            except requests.ConnectionError:
                self.base = f"http://{self.registry}"
        try:
            return self.send("GET", "/v2/", ok=(401,), authorize=False, what=what)
        except RegistryFailure as problem:
            if refused_tls is not None and problem.status == 400:
                # A TLS port answers plain HTTP with 400: the certificate was the problem, say so.
                self.base = f"https://{self.registry}"
                raise connection_failure(refused_tls) from problem
            raise

    def send(self, method: str, path: str, *, ok: tuple[int, ...] = (), retry: bool = True, authorize: bool = True,
             what: str | None = None, **kwargs: Any) -> requests.Response:
        """One exchange. A 401 to a stale token renews it once; a transient failure is sent again when
        `retry`, within the policy. Raises RegistryFailure (with the attempts made) for any answer of
        400 or more that is not in `ok`."""
        extra_headers = kwargs.pop("headers", {})
        renewed = False

        def exchange() -> requests.Response:
            nonlocal renewed
            response, mark = self._request(method, path, extra_headers, authorize, kwargs)
            if response.status_code == 401 and authorize and not renewed and self.auth.refused(mark):
                renewed = True  # an expired token: the same request once more with a new one, not counted
                response, _ = self._request(method, path, extra_headers, authorize, kwargs)
            if response.status_code < 400 or response.status_code in ok:
                return response
            raise failure(response)

        def waiting(problem: RegistryFailure, wait: float, attempt: int) -> None:
            log.warning("%s failed (%s); retrying in %.0f s (attempt %d of %d)",
                        what or f"{method} {urlsplit(self.url(path)).path}", problem, wait, attempt + 1,
                        self._budget().attempts)

        def exhausted(problem: RegistryFailure, attempts: int) -> None:
            problem.attempts = attempts

        return retry_loop(exchange, self._budget, retry_on=(RegistryFailure,),
                        transient=lambda problem: retry and problem.transient,
                        retry_after=lambda problem: problem.retry_after, waiting=waiting, exhausted=exhausted,
                        sleep=self.sleep)

    def _budget(self) -> RetryPolicy:
        return self.policy if self.answered else self.first_contact

    def _request(self, method: str, path: str, extra_headers: dict[str, str], authorize: bool,
                 kwargs: dict[str, Any]) -> tuple[requests.Response, object]:
        """One request, and the token's mark it was sent with; a connection that fails is a RegistryFailure."""
        headers, mark = self.auth.headers() if authorize else ({}, None)
        try:
            response = self.session.request(method, self.url(path), headers={**extra_headers, **headers},
                                            timeout=TIMEOUTS, **kwargs)
        except requests.RequestException as exc:
            problem = connection_failure(exc)
        else:
            self.answered = True
            return response, mark
        raise problem  # outside the handler: the failure says it all, the requests error is not chained

    def fetch_token(self, url: str, credentials: tuple[str, str] | None, what: str) -> requests.Response:
        return self.send("GET", url, authorize=False, auth=credentials, what=what)

    def close(self) -> None:
        self.session.close()


def raise_unless(response: requests.Response, *statuses: int) -> None:
    """An answer of the 2xx family the protocol does not expect is a failure too."""
    if response.status_code not in statuses and response.status_code >= 300:
        raise failure(response)

