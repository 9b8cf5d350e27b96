"""Temporal connection settings, read the way the `temporal` CLI and the SDKs read them.

Every client and worker in the project connects through :func:`connect` (the webhook gateway builds
its client from :meth:`TemporalSettings.connect_options`), so the pydantic data converter (and
payload encryption, :mod:`workers.codec`) is configured in exactly one place.

Settings come from ``temporalio.envconfig``: the ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
``TEMPORAL_API_KEY``, ``TEMPORAL_TLS*`` and ``TEMPORAL_GRPC_META_*`` variables, over a profile of a
``temporal.toml`` file (``TEMPORAL_CONFIG_FILE``, default ``~/.config/temporalio/temporal.toml``;
profile ``TEMPORAL_PROFILE``, default ``default``). One configuration therefore serves
``temporal workflow list`` and every ``apeiro`` process alike. The names this project used before
(``TEMPORAL_TLS_CERT``, ``_KEY``, ``_CA``) still work and log a deprecation warning.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, model_validator
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"

#: Variables this project read before it used envconfig -> the names Temporal's tools read.
LEGACY_VARIABLES = {
    "TEMPORAL_TLS_CERT": "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_KEY": "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_CA": "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_warned: set[str] = set()


class ConfigError(Exception):
    """The environment does not describe a usable Temporal connection; the message says what to set."""


class TemporalSettings(BaseModel):
    """Where and how to reach Temporal (one envconfig profile with the environment applied).

    Certificates are given as a path (``*_PATH`` variables, ``*_path`` in the file) or inline PEM
    (``*_DATA`` / ``*_data``). The API key and inline key material are secrets: they are never shown
    by ``repr`` or serialisation.
    """

    address: str = Field(default=DEFAULT_ADDRESS, description="host:port of the frontend (TEMPORAL_ADDRESS)")
    namespace: str = Field(default=DEFAULT_NAMESPACE, description="TEMPORAL_NAMESPACE")
    tls: bool | None = Field(
        default=None,
        description="TEMPORAL_TLS: true forces TLS, false turns it off; unset: on with any TLS setting or API key",
    )
    tls_cert: Path | None = Field(default=None, description="TEMPORAL_TLS_CLIENT_CERT_PATH: client certificate (PEM)")
    tls_key: Path | None = Field(default=None, description="TEMPORAL_TLS_CLIENT_KEY_PATH: client private key (PEM)")
    tls_ca: Path | None = Field(default=None, description="TEMPORAL_TLS_SERVER_CA_CERT_PATH: server CA bundle (PEM)")
    tls_cert_data: SecretStr | None = Field(default=None, description="TEMPORAL_TLS_CLIENT_CERT_DATA")
    tls_key_data: SecretStr | None = Field(default=None, description="TEMPORAL_TLS_CLIENT_KEY_DATA")
    tls_ca_data: SecretStr | None = Field(default=None, description="TEMPORAL_TLS_SERVER_CA_CERT_DATA")
    tls_server_name: str | None = Field(default=None, description="TEMPORAL_TLS_SERVER_NAME")
    api_key: SecretStr | None = Field(default=None, description="TEMPORAL_API_KEY (implies TLS)")
    grpc_meta: dict[str, str] = Field(default_factory=dict, description="TEMPORAL_GRPC_META_<NAME> headers")
    origin: str = Field(default="default", description="where the address came from, for error messages")

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> TemporalSettings:
        has_cert = self.tls_cert is not None or self.tls_cert_data is not None
        has_key = self.tls_key is not None or self.tls_key_data is not None
        if has_cert != has_key:
            raise ValueError(
                "a client certificate and its key go together (mutual TLS): set TEMPORAL_TLS_CLIENT_CERT_PATH "
                "and TEMPORAL_TLS_CLIENT_KEY_PATH (or their _DATA forms), or neither"
            )
        return self

    @property
    def uses_tls(self) -> bool:
        if self.tls is not None:
            return self.tls
        material = (self.tls_cert, self.tls_ca, self.tls_cert_data, self.tls_ca_data, self.tls_server_name)
        return any(m is not None for m in material) or self.api_key is not None

    @property
    def address_configured(self) -> bool:
        """False when nothing named an address and the default ``localhost:7233`` is used."""
        return self.origin != "default"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TemporalSettings:
        """The settings ``environ`` (default: the process environment) and its temporal.toml describe."""
        from temporalio.envconfig import ClientConfigProfile

        env = _normalised(dict(os.environ if environ is None else environ))
        config_file = env.get("TEMPORAL_CONFIG_FILE")
        if config_file and not Path(config_file).is_file():
            raise ConfigError(f"TEMPORAL_CONFIG_FILE={config_file}: no such file")
        try:
            profile = ClientConfigProfile.load(profile=env.get("TEMPORAL_PROFILE") or None, override_env_vars=env)
        except Exception as exc:  # the SDK's bridge raises its own ConfigError type
            where = config_file or "~/.config/temporalio/temporal.toml"
            raise ConfigError(f"Temporal client configuration ({where}, TEMPORAL_* variables): {exc}") from None
        raw: dict[str, Any] = {"grpc_meta": dict(profile.grpc_meta)}
        if profile.address:
            raw["address"] = profile.address
            raw["origin"] = "TEMPORAL_ADDRESS" if env.get("TEMPORAL_ADDRESS") else _profile_origin(env)
        if profile.namespace:
            raw["namespace"] = profile.namespace
        if profile.api_key:
            raw["api_key"] = profile.api_key
        tls = profile.tls
        if tls is not None:
            raw["tls"] = None if tls.disabled is None else not tls.disabled
            raw["tls_server_name"] = tls.server_name
            for name, source in (
                ("tls_cert", tls.client_cert),
                ("tls_key", tls.client_private_key),
                ("tls_ca", tls.server_root_ca_cert),
            ):
                if isinstance(source, Path):
                    raw[name] = source
                elif source is not None:
                    raw[f"{name}_data"] = source.decode() if isinstance(source, bytes) else source
        try:
            settings = cls.model_validate(raw)
        except ValueError as exc:
            raise ConfigError(f"invalid Temporal settings: {_first_error(exc)}") from None
        for path in (settings.tls_cert, settings.tls_key, settings.tls_ca):
            if path is not None and not path.is_file():
                raise ConfigError(f"TLS file {path} does not exist or is not a file")
        return settings

    def tls_config(self) -> TLSConfig | bool:
        if not self.uses_tls:
            return False

        def pem(path: Path | None, data: SecretStr | None) -> bytes | None:
            if path is not None:
                return path.read_bytes()
            return data.get_secret_value().encode() if data is not None else None

        return TLSConfig(
            server_root_ca_cert=pem(self.tls_ca, self.tls_ca_data),
            client_cert=pem(self.tls_cert, self.tls_cert_data),
            client_private_key=pem(self.tls_key, self.tls_key_data),
            domain=self.tls_server_name,
        )

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Client.connect`` (target, namespace, TLS, API key, gRPC metadata)."""
        options: dict[str, Any] = {
            "target_host": self.address,
            "namespace": self.namespace,
            "tls": self.tls_config(),
            "api_key": self.api_key.get_secret_value() if self.api_key else None,
        }
        if self.grpc_meta:
            options["rpc_metadata"] = dict(self.grpc_meta)
        return options


def _normalised(env: dict[str, str]) -> dict[str, str]:
    """Map the project's old variable names onto envconfig's, and accept yes/on/no/off for TEMPORAL_TLS."""
    for old, new in LEGACY_VARIABLES.items():
        if not env.get(old):
            continue
        if old not in _warned:
            _warned.add(old)
            log.warning("%s is deprecated and will be removed: set %s (the name the temporal CLI reads)", old, new)
        env.setdefault(new, env[old])
    flag = env.get("TEMPORAL_TLS")
    if flag is not None and flag.strip():
        value = flag.strip().lower()
        if value not in _TRUE + _FALSE:
            raise ConfigError(f"TEMPORAL_TLS={flag!r}: use true or false")
        env["TEMPORAL_TLS"] = "true" if value in _TRUE else "false"
    elif flag is not None:
        del env["TEMPORAL_TLS"]
    return env


def _profile_origin(env: Mapping[str, str]) -> str:
    name = env.get("TEMPORAL_PROFILE") or "default"
    return f"profile {name!r} of {env.get('TEMPORAL_CONFIG_FILE') or '~/.config/temporalio/temporal.toml'}"


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(str(e.get("msg", e)).removeprefix("Value error, ") for e in errors())
    return str(exc)


def data_converter() -> DataConverter:
    """The converter every client, worker, test environment and replayer uses.

    Pydantic models as JSON, and, when ``APEIRO_PAYLOAD_KEYS`` is set, every payload encrypted with
    AES-256-GCM (see :mod:`workers.codec`) before it leaves the process. With encryption on,
    failure messages and stack traces are encrypted too (``encode_common_attributes``): history then
    shows "Encoded failure" where an activity's error text could quote a URL, a host or a value.
    """
    from workers.codec import CodecConfigError, codec_from_env

    try:
        codec = codec_from_env()
    except CodecConfigError as exc:
        raise ConfigError(f"payload encryption: {exc}") from None
    if codec is None:
        return pydantic_data_converter
    from temporalio.converter import DefaultFailureConverterWithEncodedAttributes

    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(settings: TemporalSettings | None = None) -> Client:
    """Connect to Temporal with the project's data converter; settings default to the environment.

    Also applies the process's observability settings (:mod:`workers.observability`): the
    Prometheus runtime and, when enabled, the tracing interceptor, which workers built on this
    client inherit.
    """
    from workers.observability import ObservabilityError, runtime_from_env, tracing_interceptors

    settings = settings or TemporalSettings.from_env()
    converter = data_converter()
    try:
        runtime = runtime_from_env()
        interceptors = tracing_interceptors()
    except ObservabilityError as exc:
        raise ConfigError(str(exc)) from None
    try:
        return await Client.connect(
            **settings.connect_options(),
            data_converter=converter,
            interceptors=interceptors,
            runtime=runtime,
        )
    except RuntimeError as exc:
        raise ConfigError(
            f"cannot reach Temporal at {settings.address} (namespace {settings.namespace}, address from "
            f"{settings.origin}): {exc}. Check TEMPORAL_ADDRESS or the temporal.toml profile "
            "(TEMPORAL_PROFILE), or start the local landscape with `apeiro dev up`."
        ) from None


#: Per client: when each set of names was last found registered (a positive answer holds
#: REGISTERED_TTL_S; a negative one is asked again next time, so registering them takes effect at once).
_REGISTERED: weakref.WeakKeyDictionary[Client, dict[tuple[str, ...], float]] = weakref.WeakKeyDictionary()
REGISTERED_TTL_S = 60.0


async def search_attributes_registered(client: Client, names: Sequence[str]) -> bool:
    """Whether the namespace has every custom search attribute in ``names`` (False when it cannot tell).

    Shared by the CLI and the webhook gateway: both start pipelines and set the attributes only when
    the server knows them (an unregistered attribute fails the workflow task forever). A yes is kept
    for a minute per client: a process starting many pipelines asked the server once per start."""
    key = tuple(sorted(names))
    seen = _REGISTERED.get(client, {}).get(key)
    if seen is not None and time.monotonic() - seen < REGISTERED_TTL_S:
        return True
    try:
        resp = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except Exception:
        return False
    registered = all(n in resp.custom_attributes for n in names)
    if registered:
        _REGISTERED.setdefault(client, {})[key] = time.monotonic()
    return registered
