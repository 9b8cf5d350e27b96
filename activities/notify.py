"""``core.notify``: post a message to Slack, Microsoft Teams or a generic (signed) webhook.

One target failing does not stop the others; the activity fails (and Temporal retries it) only when
every target failed with something a retry may fix. URLs and keys are secret references resolved
here, never in workflow history.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.secrets import resolve_secret
from definitions.notify import NotifyArgs, NotifyResult, NotifyTarget

ICON = {"approval": "⏸️", "failed": "❌", "finished": "🏁", "message": "ℹ️"}


def sign(body: bytes, key: str, timestamp: int | None = None) -> str:
    """The header our own gateway verifies (triggers/auth.py): ``t=<unix>,v1=<hex hmac>``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(key.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def message_text(args: NotifyArgs) -> str:
    lines = [f"{ICON.get(args.event, '')} *{args.title}*".strip()]
    if args.text:
        lines.append(args.text)
    if args.link:
        lines.append(args.link)
    return "\n".join(lines)


def body_for(target: NotifyTarget, args: NotifyArgs) -> dict[str, Any]:
    if target.kind == "slack":
        return {"text": message_text(args)}
    if target.kind == "teams":
        # The MessageCard format Teams incoming webhooks and Workflows webhooks accept.
        card: dict[str, Any] = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": args.title,
            "title": args.title,
            "text": args.text or args.title,
        }
        if args.link:
            card["potentialAction"] = [
                {"@type": "OpenUri", "name": "Open", "targets": [{"os": "default", "uri": args.link}]}
            ]
        return card
    return {
        "event": args.event,
        "title": args.title,
        "text": args.text,
        "link": args.link,
        "pipeline": args.pipeline,
        "run": args.run,
        "step": args.step,
    }


@activity.defn(name="core.notify")
async def notify(args: NotifyArgs) -> NotifyResult:
    sent, failed, retryable = 0, [], False
    async with httpx.AsyncClient(timeout=10.0) as client:
        for target in args.targets:
            label = f"{target.kind} ({target.url_ref})"
            try:
                url = resolve_secret(target.url_ref)
                body = json.dumps(body_for(target, args)).encode()
                headers = {"Content-Type": "application/json"}
                if target.key_ref:
                    headers["X-Apeiro-Signature"] = sign(body, resolve_secret(target.key_ref))
                response = await client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                failed.append(f"{label}: {exc}")
                retryable = True
                continue
            except Exception as exc:  # a secret that does not resolve: no retry fixes it
                failed.append(f"{label}: {exc}")
                continue
            if response.status_code >= 300:
                failed.append(f"{label}: HTTP {response.status_code} {response.text[:200]}")
                retryable = retryable or response.status_code >= 500 or response.status_code == 429
                continue
            sent += 1
    if not sent and failed:
        raise ApplicationError("no notification was delivered: " + "; ".join(failed), non_retryable=not retryable)
    return NotifyResult(sent=sent, failed=failed)
