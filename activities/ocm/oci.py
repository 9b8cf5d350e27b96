"""A small streaming OCI distribution client (httpx), built for copying between registries.

Why not oras: it reads whole blobs into memory, re-serialises manifests (their digest changes), and
has no cross-repository mount, resume or 429 handling. Here:

- manifests travel as the exact bytes the registry served, so their digest never changes;
- blobs stream source -> target in chunks (``blobcopy``), SHA-256 computed on the fly; a chunk's
  body streams from the source (``StreamedBody``), so memory holds one piece, not one chunk;
- ``HEAD`` skips blobs the target already has; on the same registry a blob is mounted, not copied;
- chunked uploads are resumable: the upload URL and offset are the state, the registry's own
  ``Range`` answer is the truth on resume, so at most the chunk in flight is sent twice;
- 429/503 honour ``Retry-After`` (bounded; past the bound Temporal's retry takes over);
- auth: anonymous, basic, and the bearer-token dance (``WWW-Authenticate: Bearer realm=...``);
  TLS with a CA bundle.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import functools
import hashlib
import os
import re
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpcore  # noqa: F401 - see below
import httpx

from activities.bounded import MAX_ERROR_BODY, MAX_MANIFEST_BYTES, RemoteDataError, loads_strict, read_response
from activities.ocm.errors import BadCredentials, ComponentNotFound, DigestMismatch, OCMError, RegistryError
from activities.ocm.loopstream import LoopTransport

# httpx imports httpcore (and httpcore trio, when it is installed) only when its first client is built;
# imported here, a worker pays that at start (~0.1-0.3 s) instead of in its first transport's plan.

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
INDEX_TYPES = MANIFEST_TYPES[1::2]
DEFAULT_CHUNK = 8 * 1024 * 1024


class NotFound(ComponentNotFound):
    kind = "NotFound"


#: Largest body read from an answer that is not a manifest or blob (registries send a few bytes, or
#: an error document of a few hundred).
MAX_ANSWER_BYTES = MAX_ERROR_BODY


class RemoteDataRejected(OCMError):
    """A manifest, index or token answer over its size cap or not strict JSON: retrying reads the same."""

    kind = "RemoteDataRejected"


async def read_manifest_body(resp: httpx.Response, source: str) -> bytes:
    """A manifest's exact bytes, at most MAX_MANIFEST_BYTES, checked to be strict JSON of bounded depth.

    The check here means every later ``json.loads`` of these bytes (the transport's walk, the layout
    reader) can neither run out of memory nor recurse without bound.
    """
    try:
        data = await read_response(resp, MAX_MANIFEST_BYTES, source)
        loads_strict(data, source)
    except RemoteDataError as exc:
        raise RemoteDataRejected(str(exc)) from None
    return data


async def read_json_answer(resp: httpx.Response, source: str, limit: int = MAX_ERROR_BODY) -> Any:
    """A small JSON answer (a token service), capped and strictly parsed."""
    try:
        return loads_strict(await read_response(resp, limit, source), source)
    except RemoteDataError as exc:
        raise RemoteDataRejected(str(exc)) from None


@dataclass
class UploadSession:
    """Where a chunked upload stands: carried in heartbeats so a new attempt resumes it."""

    location: str
    offset: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"location": self.location, "offset": self.offset}


@dataclass
class CopyStats:
    digest: str
    size: int = 0
    bytes_sent: int = 0
    skipped: bool = False
    mounted: bool = False
    resumed_from: int = 0
    chunks: int = 0
    #: Seconds from each chunk's last byte sent to the target's answer, summed and the longest.
    chunk_end_s: float = 0.0
    chunk_end_max_s: float = 0.0
    #: Seconds the closing PUT took (the registry checks the digest and moves the blob into place).
    finish_s: float = 0.0
    #: Bytes read from the source (and hashed) while the target finished a chunk.
    read_ahead: int = 0


@dataclass
class Credentials:
    username: str | None = None
    password: str | None = None
    token: str | None = None


@dataclass(frozen=True)
class StreamedBody:
    """A request body produced while it is sent (e.g. a chunk streamed from another registry).

    ``open()`` starts it afresh for each attempt of the request (a retry after 429 sends it again).
    """

    open: Callable[[], AsyncIterator[bytes]]
    size: int


Body = bytes | list[bytes] | StreamedBody


async def _pieces(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for p in pieces:
        yield p


def _size(data: Body) -> int:
    if isinstance(data, StreamedBody):
        return data.size
    return len(data) if isinstance(data, bytes) else sum(len(p) for p in data)


def _body(content: Body | None) -> Any:
    if isinstance(content, StreamedBody):
        return content.open()
    return _pieces(content) if isinstance(content, list) else content


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


def retry_after_seconds(value: str | None, default: float) -> float:
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return default


def _mtime(path: str | None) -> float:
    try:
        return os.stat(path).st_mtime if path else 0.0
    except OSError:
        return 0.0


@functools.lru_cache(maxsize=32)
def _ssl_context(ca_bundle: str | None, _mtime: float) -> ssl.SSLContext:
    """One TLS context per CA bundle (and file version) for the whole process.

    Building one loads and parses the CA certificates: ~15-150 ms of CPU and a few MiB each, and every
    activity opens two or three clients; an SSLContext is safe to share between connections.
    """
    if ca_bundle:
        return ssl.create_default_context(cafile=ca_bundle)
    return httpx.create_ssl_context()


#: Registries (base URL, user name) that asked this process for basic auth: a new client sends the
#: credentials with its first request instead of learning it from a 401 first (one round trip fewer per
#: activity and scope; with a remote registry, tens of milliseconds each). Only where the registry asked
#: for basic auth before, over the same scheme and host.
_BASIC_REGISTRIES: set[tuple[str, str]] = set()


@dataclass
class RegistryClient:
    """One registry (``scheme://host:port``). Use as an async context manager."""

    base_url: str
    credentials: Credentials = field(default_factory=Credentials)
    ca_bundle: str | None = None
    timeout: float = 60.0
    #: How often one request is retried on 429/503 before the error goes to Temporal.
    max_retries: int = 6
    max_retry_wait: float = 30.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    transport: httpx.AsyncBaseTransport | None = None
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)
    _auth: dict[str, str] = field(default_factory=dict, init=False, repr=False)  # scope -> header
    _basic_ok: bool = field(default=False, init=False, repr=False)
    retries_done: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise OCMError(f"registry URL {self.base_url!r} must be http(s)://host[:port]")
        self.base_url = f"{parts.scheme}://{parts.netloc}"

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc

    async def __aenter__(self) -> RegistryClient:
        verify = _ssl_context(self.ca_bundle, _mtime(self.ca_bundle))
        header = self._basic_header()
        if header is not None and self._basic_key in _BASIC_REGISTRIES:
            self._auth["*"] = header
        timeout = httpx.Timeout(self.timeout, connect=10.0)
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=16)
        if self.transport is not None:
            self._client = httpx.AsyncClient(transport=self.transport, timeout=self.timeout)
        elif set(urllib.request.getproxies()) - {"no"}:
            # httpx's own transport: it routes through the proxies in the environment (HTTPS_PROXY, ...).
            self._client = httpx.AsyncClient(verify=verify, timeout=timeout, limits=limits)
        else:
            # Connections on the event loop's own transports (activities/ocm/loopstream.py): bounded read
            # buffers per connection and the loop's TLS, less CPU and memory per streamed MiB.
            self._client = httpx.AsyncClient(transport=LoopTransport(verify=verify, limits=limits), timeout=timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- auth and retries --------------------------------------------------------------------------

    @property
    def _basic_key(self) -> tuple[str, str]:
        """This client's entry in ``_BASIC_REGISTRIES``: registry and user."""
        return self.base_url, self.credentials.username or ""

    def _basic_header(self) -> str | None:
        c = self.credentials
        if c.username is None:
            return None
        raw = f"{c.username}:{c.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    async def _authenticate(self, challenge: str, scope: str) -> None:
        scheme, params = _parse_challenge(challenge)
        if scheme == "basic":
            header = self._basic_header()
            if header is None:
                raise BadCredentials(f"registry {self.host} requires credentials (basic auth); none configured")
            # Basic auth does not depend on the scope: send it with every request from now on, and
            # from the first request of this process's next client for the same registry and user.
            self._auth[scope] = self._auth["*"] = header
            _BASIC_REGISTRIES.add(self._basic_key)
            return
        if scheme != "bearer" or "realm" not in params:
            raise BadCredentials(f"registry {self.host} asks for unsupported authentication {challenge!r}")
        # A registry that asked for basic auth before now wants tokens: stop sending basic up front.
        _BASIC_REGISTRIES.discard(self._basic_key)
        if self._auth.get("*", "").startswith("Basic "):
            del self._auth["*"]
        if self.credentials.token and not self.credentials.username:
            self._auth[scope] = f"Bearer {self.credentials.token}"
            return
        query = {"service": params.get("service", "")}
        if params.get("scope") or scope:
            query["scope"] = params.get("scope") or scope
        headers = {}
        basic = self._basic_header()
        if basic:
            headers["Authorization"] = basic
        assert self._client is not None
        req = self._client.build_request("GET", params["realm"] + "?" + urlencode(query), headers=headers)
        resp = await self._client.send(req, stream=True)
        if resp.status_code >= 400:
            await resp.aclose()
        if resp.status_code in (401, 403):
            raise BadCredentials(f"token service {params['realm']} rejected the credentials for {self.host}")
        if resp.status_code >= 400:
            raise RegistryError(f"token service {params['realm']} answered {resp.status_code}")
        body = await read_json_answer(resp, f"token service {params['realm']}")
        if not isinstance(body, dict):
            raise BadCredentials(f"token service {params['realm']} answered something other than a JSON object")
        token = body.get("token") or body.get("access_token")
        if not token:
            raise BadCredentials(f"token service {params['realm']} returned no token")
        self._auth[scope] = f"Bearer {token}"

    async def request(
        self,
        method: str,
        url: str,
        *,
        scope: str = "",
        headers: dict[str, str] | None = None,
        content: Body | None = None,
        stream: bool = False,
        ok: tuple[int, ...] = (200, 201, 202, 204),
    ) -> httpx.Response:
        """One request with auth and bounded 429/503 retries.

        ``content`` is bytes, a list of pieces (sent as they are, so a chunk is held once in memory) or
        a ``StreamedBody`` (opened afresh for each attempt); each can be sent again on a retry.
        """
        assert self._client is not None, "use RegistryClient as an async context manager"
        full = url if url.startswith("http") else urljoin(self.base_url, url)
        authed_once = False
        attempt = 0
        while True:
            hdrs = dict(headers or {})
            auth = self._auth.get(scope) or self._auth.get("*")
            if auth:
                hdrs["Authorization"] = auth
            body = _body(content)
            req = self._client.build_request(method, full, headers=hdrs, content=body)
            try:
                # Always streamed: a non-streamed send would read a whole answer into memory, and a
                # registry decides how long the answer to a HEAD, PUT or POST is (see _read_answer).
                resp = await self._client.send(req, stream=True)
            except httpx.TransportError as exc:
                raise RegistryError(f"{method} {full}: {type(exc).__name__}: {exc}") from None
            if resp.status_code == 401:
                await resp.aclose()
                if authed_once:
                    raise BadCredentials(
                        f"registry {self.host} rejected the credentials for {method} {urlsplit(full).path}; "
                        "check the username/password or token reference"
                    )
                await self._authenticate(resp.headers.get("www-authenticate", "Basic"), scope)
                if not scope:
                    self._auth["*"] = self._auth[scope]
                authed_once = True
                continue
            if resp.status_code in (429, 503) and attempt < self.max_retries:
                wait = min(
                    retry_after_seconds(resp.headers.get("retry-after"), 2.0**attempt * 0.5),
                    self.max_retry_wait,
                )
                await resp.aclose()
                attempt += 1
                self.retries_done += 1
                await self.sleep(wait)
                continue
            if resp.status_code in ok:
                if not stream:
                    await _read_answer(resp, method, f"answer to {method} {urlsplit(full).path} on {self.host}")
                return resp
            await _read_error_body(resp)
            await resp.aclose()
            self._raise_for(resp, method, full)

    def _raise_for(self, resp: httpx.Response, method: str, url: str) -> None:
        path = urlsplit(url).path
        detail = resp.content[:300].decode(errors="replace") if resp.content else ""
        if resp.status_code == 403:
            raise BadCredentials(f"registry {self.host} denied {method} {path} (403): {detail}")
        if resp.status_code == 404:
            raise NotFound(f"{method} {path}: not found on {self.host}")
        if resp.status_code in (429,) or resp.status_code >= 500:
            raise RegistryError(f"{method} {path} on {self.host}: {resp.status_code} {detail}")
        if "DIGEST_INVALID" in detail:
            raise DigestMismatch(f"{method} {path}: registry says the content does not match its digest: {detail}")
        raise OCMError(f"{method} {path} on {self.host}: unexpected {resp.status_code} {detail}")

    @staticmethod
    def _scope(repo: str, push: bool = False) -> str:
        return f"repository:{repo}:{'pull,push' if push else 'pull'}"

    # --- manifests ---------------------------------------------------------------------------------

    async def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]:
        """(exact bytes, media type, digest) of a manifest by tag or digest."""
        resp = await self.request(
            "GET",
            f"/v2/{repo}/manifests/{ref}",
            scope=self._scope(repo),
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
            stream=True,
        )
        data = await read_manifest_body(resp, f"manifest {self.host}/{repo}:{ref}")
        digest = sha256_digest(data)
        if ref.startswith("sha256:") and ref != digest:
            raise DigestMismatch(f"manifest {repo}@{ref} served with content digest {digest}")
        media = resp.headers.get("content-type", "").split(";")[0].strip()
        return data, media, digest

    async def head_manifest(self, repo: str, ref: str) -> str | None:
        """The digest of ``repo:ref`` or None when absent."""
        try:
            resp = await self.request(
                "HEAD",
                f"/v2/{repo}/manifests/{ref}",
                scope=self._scope(repo),
                headers={"Accept": ", ".join(MANIFEST_TYPES)},
            )
        except NotFound:
            return None
        digest = resp.headers.get("docker-content-digest")
        if digest:
            return digest
        _data, _, digest = await self.get_manifest(repo, ref)
        return digest

    async def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        resp = await self.request(
            "PUT",
            f"/v2/{repo}/manifests/{ref}",
            scope=self._scope(repo, True),
            headers={"Content-Type": media_type},
            content=data,
        )
        digest = sha256_digest(data)
        served = resp.headers.get("docker-content-digest")
        if served and served != digest:
            raise DigestMismatch(f"registry stored manifest {repo}:{ref} as {served}, expected {digest}")
        return digest

    # --- blobs -------------------------------------------------------------------------------------

    async def blob_size(self, repo: str, digest: str) -> int | None:
        try:
            resp = await self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=self._scope(repo))
        except NotFound:
            return None
        return int(resp.headers.get("content-length", "0"))

    async def get_blob(self, repo: str, digest: str, max_size: int = 16 * 1024 * 1024) -> bytes:
        """A small blob (config, descriptor layer) fully in memory, digest-checked."""
        async with self.blob_stream(repo, digest) as resp:
            buf = bytearray()
            async for chunk in resp.aiter_bytes():
                buf.extend(chunk)
                if len(buf) > max_size:
                    raise OCMError(f"blob {repo}@{digest} is larger than {max_size} bytes; stream it instead")
        data = bytes(buf)
        if sha256_digest(data) != digest:
            raise DigestMismatch(f"blob {repo}@{digest} content has digest {sha256_digest(data)}")
        return data

    @contextlib.asynccontextmanager
    async def blob_stream(
        self, repo: str, digest: str, offset: int = 0, end: int | None = None
    ) -> AsyncIterator[httpx.Response]:
        """The blob's bytes from ``offset`` (to ``end``, exclusive, when given), as a streamed answer."""
        headers = {"Range": f"bytes={offset}-{'' if end is None else end - 1}"} if offset or end is not None else {}
        resp = await self.request(
            "GET",
            f"/v2/{repo}/blobs/{digest}",
            scope=self._scope(repo),
            headers=headers,
            stream=True,
            ok=(200, 206),
        )
        try:
            if headers and resp.status_code == 200:
                raise OCMError(f"registry {self.host} ignored the Range request for {digest}")
            yield resp
        finally:
            await resp.aclose()

    async def mount_blob(self, repo: str, digest: str, from_repo: str) -> str | None:
        """Cross-repository mount. None when mounted; else the upload URL the registry opened instead."""
        q = urlencode({"mount": digest, "from": from_repo})
        resp = await self.request(
            "POST",
            f"/v2/{repo}/blobs/uploads/?{q}",
            scope=self._scope(repo, True),
            headers={"Content-Length": "0"},
            content=b"",
        )
        if resp.status_code == 201:
            return None
        return self._location(resp)

    async def start_upload(self, repo: str) -> str:
        resp = await self.request(
            "POST",
            f"/v2/{repo}/blobs/uploads/",
            scope=self._scope(repo, True),
            headers={"Content-Length": "0"},
            content=b"",
        )
        return self._location(resp)

    def _location(self, resp: httpx.Response) -> str:
        loc = resp.headers.get("location")
        if not loc:
            raise OCMError(f"registry {self.host} opened an upload without a Location header")
        return urljoin(str(resp.request.url), loc)

    async def upload_offset(self, location: str, repo: str) -> int | None:
        """How many bytes the registry holds for an open upload; None if the upload is gone."""
        status = await self.upload_status(location, repo)
        return None if status is None else status[0]

    async def upload_status(self, location: str, repo: str) -> tuple[int, str] | None:
        """(bytes the registry holds, the upload URL to continue with) for an open upload.

        The OCI distribution spec's ``GET`` on the upload URL: ``Range`` is the truth on resume, and the
        ``Location`` it answers carries the registry's current upload state (distribution signs the
        offset into it and cancels an upload addressed with a stale one). None when the upload is gone,
        including when the registry discarded it for a stale state: the caller starts a new one.
        """
        try:
            resp = await self.request("GET", location, scope=self._scope(repo, True), ok=(204, 200))
        except NotFound:
            return None
        except OCMError as exc:
            if "BLOB_UPLOAD_INVALID" in str(exc) or "BLOB_UPLOAD_UNKNOWN" in str(exc):
                return None
            raise
        rng = resp.headers.get("range", "")
        m = re.match(r"(?:bytes=)?0-(\d+)", rng)
        # "0-0" is what distribution answers for an empty upload (and for a 1-byte one, which our
        # chunked copies never leave: their chunks are >= 64 KiB). Reading it as 1 byte would make
        # the next chunk skip its first byte.
        offset = int(m.group(1)) + 1 if m and m.group(1) != "0" else 0
        return offset, self._location(resp) if resp.headers.get("location") else location

    async def upload_chunk(self, location: str, repo: str, data: Body, offset: int) -> str:
        size = _size(data)
        resp = await self.request(
            "PATCH",
            location,
            scope=self._scope(repo, True),
            content=data,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + size - 1}",
                "Content-Length": str(size),
            },
        )
        return self._location(resp)

    async def finish_upload(self, location: str, repo: str, digest: str, data: Body = b"") -> None:
        sep = "&" if "?" in location else "?"
        await self.request(
            "PUT",
            f"{location}{sep}{urlencode({'digest': digest})}",
            scope=self._scope(repo, True),
            content=data,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(_size(data))},
            ok=(201, 204),
        )

    async def cancel_upload(self, location: str, repo: str) -> None:
        with contextlib.suppress(OCMError):
            await self.request("DELETE", location, scope=self._scope(repo, True), ok=(204, 200, 202, 404))

    async def put_blob(self, repo: str, data: bytes) -> str:
        """Upload a small blob monolithically (skipped when present)."""
        digest = sha256_digest(data)
        if await self.blob_size(repo, digest) is not None:
            return digest
        loc = await self.start_upload(repo)
        await self.finish_upload(loc, repo, digest, data)
        return digest


async def _read_answer(resp: httpx.Response, method: str, source: str) -> None:
    """Read a non-streamed answer (to HEAD, PUT, POST, PATCH, DELETE or an upload-status GET) of at
    most MAX_ANSWER_BYTES into ``resp.content``, then close it. These answers carry their meaning in
    status and headers; a body past the cap is refused (non-retryable) instead of filling memory."""
    if method == "HEAD":  # no body by definition; Content-Length there is the resource's size
        await resp.aclose()
        resp._content = b""
        return
    try:
        resp._content = await read_response(resp, MAX_ANSWER_BYTES, source)
    except RemoteDataError as exc:
        raise RemoteDataRejected(str(exc)) from None
    except (httpx.TransportError, httpx.StreamError) as exc:
        raise RegistryError(f"{source}: {type(exc).__name__}: {exc}") from None


async def _read_error_body(resp: httpx.Response) -> None:
    """Read at most MAX_ERROR_BODY bytes of an error answer (to quote it); an endless one is cut."""
    buf = bytearray()
    async for chunk in resp.aiter_bytes():
        buf.extend(chunk)
        if len(buf) > MAX_ERROR_BODY:
            break
    resp._content = bytes(buf[:MAX_ERROR_BODY])


async def copy_manifest(
    src: RegistryClient, src_repo: str, dst: RegistryClient, dst_repo: str, ref: str, tag: str | None = None
) -> tuple[str, bytes, str]:
    """Copy one manifest's exact bytes (not its blobs). Returns (digest, bytes, media type)."""
    data, media, digest = await src.get_manifest(src_repo, ref)
    existing = await dst.head_manifest(dst_repo, tag or digest)
    if existing != digest:
        await dst.put_manifest(dst_repo, tag or digest, data, media)
    return digest, data, media


async def push_chunks(
    client: RegistryClient, repo: str, chunks: Iterable[bytes], chunk_size: int = DEFAULT_CHUNK
) -> tuple[str, int]:
    """Upload a blob produced piece by piece (never held whole); returns (digest, size)."""
    hasher = hashlib.sha256()
    loc = await client.start_upload(repo)
    buf = bytearray()
    offset = 0
    for piece in chunks:
        hasher.update(piece)
        buf.extend(piece)
        if len(buf) >= chunk_size:
            loc = await client.upload_chunk(loc, repo, bytes(buf), offset)
            offset += len(buf)
            buf.clear()
    digest = "sha256:" + hasher.hexdigest()
    if await client.blob_size(repo, digest) is not None:
        await client.cancel_upload(loc, repo)
        return digest, offset + len(buf)
    await client.finish_upload(loc, repo, digest, bytes(buf))
    return digest, offset + len(buf)
