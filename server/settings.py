"""Every setting, read once from the environment, each with its default.

The README's configuration table mirrors this module; keep them in step.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MEILI_PORT = 7700
DEFAULT_SMTP_SINK = "smtp://127.0.0.1:1025"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _load_secret_key(data_dir: Path, env_name: str = "SECRET_KEY", file_name: str = "secret_key") -> str:
    """SECRET_KEY (or another secret) from the environment, else one generated once into DATA_DIR."""
    if key := os.environ.get(env_name, "").strip():
        return key
    path = data_dir / file_name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: when two processes start together, one writes and the other reads its key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    meili_url: str
    meili_master_key: str
    meili_managed: bool  # True when `make run` starts Meilisearch itself
    redis_url: str | None
    secret_key: str
    host: str
    port: int
    smtp_url: str
    mail_from: str
    base_url: str
    max_body_bytes: int = 1_048_576
    session_days: int = 14
    secure_cookies: bool = False
    desk_auto_close_days: int = 4  # solved tickets close after this many days without a reply
    smtp_listen: str = "127.0.0.1:2525"  # the inbound mail listener (`python -m server smtp`)
    inbound_max_bytes: int = 25 * 1024 * 1024  # largest inbound email accepted (SMTP and HTTP)
    inbound_secret: str = ""  # Bearer secret of POST /api/v1/inbound/email
    chat_allowed_origins: str = "https:"  # CSP frame-ancestors of /chat (the widget's iframe)
    # Webhook delivery attempts (and events no kept attempt needs) are deleted this many days
    # after they happened, hourly by the worker; a delivery still queued or retrying is never
    # deleted (server/webhooks/delivery.py, docs/WEBHOOKS.md).
    webhook_log_days: int = 30
    # Web processes `python -m server serve` runs (uvicorn workers): one per core to use them all.
    # More than one needs REDIS_URL, which shares rate limits and live events between them.
    web_concurrency: int = 1

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))

    @property
    def mail_dir(self) -> Path:
        """Where the local SMTP sink keeps captured messages."""
        return self.data_dir / "mail"


def load_settings() -> Settings:
    data_dir = Path(_env("DATA_DIR", str(ROOT / "var"))).resolve()
    host = _env("HOST", "127.0.0.1")
    port = int(_env("PORT", "8000"))
    meili_url = os.environ.get("MEILI_URL", "").strip()
    base_url = _env("BASE_URL", f"http://{host}:{port}")
    return Settings(
        data_dir=data_dir,
        database_url=_env("DATABASE_URL", f"sqlite:///{data_dir / 'kizuna.sqlite3'}"),
        meili_url=meili_url or f"http://127.0.0.1:{DEFAULT_MEILI_PORT}",
        meili_master_key=_env("MEILI_MASTER_KEY", "kizuna-dev-master-key-change-me"),
        meili_managed=not meili_url,
        redis_url=os.environ.get("REDIS_URL", "").strip() or None,
        secret_key=_load_secret_key(data_dir),
        host=host,
        port=port,
        smtp_url=_env("SMTP_URL", DEFAULT_SMTP_SINK),
        mail_from=_env("MAIL_FROM", "Kizuna <support@kizuna.localhost>"),
        base_url=base_url.rstrip("/"),
        secure_cookies=base_url.startswith("https://"),
        desk_auto_close_days=max(1, int(_env("DESK_AUTO_CLOSE_DAYS", "4"))),
        smtp_listen=_env("SMTP_LISTEN", "127.0.0.1:2525"),
        inbound_max_bytes=max(1024, int(_env("INBOUND_MAX_BYTES", str(25 * 1024 * 1024)))),
        inbound_secret=_load_secret_key(data_dir, "INBOUND_EMAIL_SECRET", "inbound_email_secret"),
        chat_allowed_origins=_env("CHAT_ALLOWED_ORIGINS", "https:"),
        webhook_log_days=max(1, int(_env("WEBHOOK_LOG_DAYS", "30"))),
        web_concurrency=max(1, int(_env("WEB_CONCURRENCY", "1"))),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
