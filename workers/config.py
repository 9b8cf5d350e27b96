"""Temporal connection settings, read from the environment.

Every client and worker in the project connects through :func:`connect`, so the pydantic data
converter (and payload encryption, :mod:`workers.codec`) is configured in exactly one place.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, model_validator
from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter


class ConfigError(Exception):
    """The environment does not describe a usable Temporal connection; the message says what to set."""


class TemporalSettings(BaseModel):
    """Where and how to reach Temporal. Field names mirror the environment variables."""

    address: str = Field(default="localhost:7233", description="host:port of the frontend (TEMPORAL_ADDRESS)")
    namespace: str = Field(default="default", description="TEMPORAL_NAMESPACE")
    tls: bool = Field(default=False, description="TEMPORAL_TLS=true forces TLS without client certificates")
    tls_cert: Path | None = Field(default=None, description="TEMPORAL_TLS_CERT: client certificate (PEM)")
    tls_key: Path | None = Field(default=None, description="TEMPORAL_TLS_KEY: client private key (PEM)")
    tls_ca: Path | None = Field(default=None, description="TEMPORAL_TLS_CA: server CA bundle (PEM)")
    tls_server_name: str | None = Field(default=None, description="TEMPORAL_TLS_SERVER_NAME")
    api_key_ref: str | None = Field(
        default=None,
        description="TEMPORAL_API_KEY (the key itself) is read at connect time; never logged or stored",
    )

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> TemporalSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together (mutual TLS)")
        return self

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls or self.tls_cert or self.tls_ca or self.api_key_ref)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> TemporalSettings:
        env = os.environ if environ is None else environ
        raw: dict[str, object] = {}
        mapping = {
            "TEMPORAL_ADDRESS": "address",
            "TEMPORAL_NAMESPACE": "namespace",
            "TEMPORAL_TLS_CERT": "tls_cert",
            "TEMPORAL_TLS_KEY": "tls_key",
            "TEMPORAL_TLS_CA": "tls_ca",
            "TEMPORAL_TLS_SERVER_NAME": "tls_server_name",
        }
        for var, field in mapping.items():
            if env.get(var):
                raw[field] = env[var]
        if env.get("TEMPORAL_TLS"):
            raw["tls"] = env["TEMPORAL_TLS"].strip().lower() in ("1", "true", "yes", "on")
        if env.get("TEMPORAL_API_KEY"):
            raw["api_key_ref"] = "env:TEMPORAL_API_KEY"
        try:
            settings = cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"invalid Temporal settings from the environment: {problems}") from None
        for path in (settings.tls_cert, settings.tls_key, settings.tls_ca):
            if path is not None and not path.is_file():
                raise ConfigError(f"TLS file {path} does not exist or is not a file")
        return settings

    def tls_config(self) -> TLSConfig | bool:
        if not self.uses_tls:
            return False
        return TLSConfig(
            server_root_ca_cert=self.tls_ca.read_bytes() if self.tls_ca else None,
            client_cert=self.tls_cert.read_bytes() if self.tls_cert else None,
            client_private_key=self.tls_key.read_bytes() if self.tls_key else None,
            domain=self.tls_server_name,
        )


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
    api_key = os.environ.get("TEMPORAL_API_KEY") if settings.api_key_ref else None
    try:
        return await Client.connect(
            settings.address,
            namespace=settings.namespace,
            tls=settings.tls_config(),
            api_key=api_key,
            data_converter=converter,
            interceptors=interceptors,
            runtime=runtime,
        )
    except RuntimeError as exc:
        raise ConfigError(
            f"cannot reach Temporal at {settings.address} (namespace {settings.namespace}): {exc}. "
            "Check TEMPORAL_ADDRESS, or start the local landscape with `apeiro dev up`."
        ) from None
