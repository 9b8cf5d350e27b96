"""Who acts in the console. Never anonymous: every action names a person.

Two ways, both configured by the operator (docs/operations.md, "The console"):

- An authenticating proxy in front (oauth2-proxy, an ingress with OIDC) sets a header with the
  user's identity; ``APEIRO_CONSOLE_IDENTITY_HEADER`` names it (e.g. ``X-Forwarded-User``). Only set
  it when every request comes through that proxy, which must overwrite the header a client sends.
- Bearer tokens: ``APEIRO_CONSOLE_TOKENS_FILE`` is a file of ``identity token`` lines (one per
  person or robot; ``#`` comments). The page asks for the token once and sends it as
  ``Authorization: Bearer ...``. Tokens are compared in constant time.

With neither configured, the console is read-only: every action is refused with 401.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from pydantic import BaseModel, Field

ENV_HEADER = "APEIRO_CONSOLE_IDENTITY_HEADER"
ENV_TOKENS_FILE = "APEIRO_CONSOLE_TOKENS_FILE"


class Unauthenticated(PermissionError):
    """No identity could be established; the message says how to get one."""


class ConsoleAuth(BaseModel):
    identity_header: str | None = None
    tokens: dict[str, str] = Field(default_factory=dict, repr=False)  # token -> identity

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ConsoleAuth:
        env = dict(os.environ) if env is None else env
        tokens: dict[str, str] = {}
        path = env.get(ENV_TOKENS_FILE, "").strip()
        if path:
            tokens = parse_tokens(Path(path).read_text(), path)
        return cls(identity_header=env.get(ENV_HEADER, "").strip() or None, tokens=tokens)

    @property
    def configured(self) -> bool:
        return bool(self.identity_header or self.tokens)

    def identify(self, headers: dict[str, str]) -> str:
        """The acting identity from a request's headers (lower-case names)."""
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            presented = auth[7:].strip()
            for token, identity in self.tokens.items():
                if hmac.compare_digest(token.encode(), presented.encode()):
                    return identity
            raise Unauthenticated("the bearer token is not known to this console")
        if self.identity_header:
            value = headers.get(self.identity_header.lower(), "").strip()
            if value:
                return value
        if not self.configured:
            raise Unauthenticated(
                f"this console is read-only: set {ENV_HEADER} (behind an authenticating proxy) or {ENV_TOKENS_FILE}"
            )
        raise Unauthenticated("who is acting? sign in through the proxy or give your console token")


def parse_tokens(text: str, source: str = "tokens file") -> dict[str, str]:
    tokens: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[1]) < 16:
            raise ValueError(f"{source}:{number}: expected 'identity token' with a token of 16+ characters")
        tokens[parts[1]] = parts[0]
    return tokens
