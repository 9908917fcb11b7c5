"""The one settings object; every process builds it from the environment."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain import programme

DEFAULT_SQLITE_PATH = Path(".dealledger") / "ledger.sqlite"


class Settings(BaseSettings):
    """Deal Ledger configuration (environment prefix ``DEALLEDGER_``).

    Without ``database_url`` the ledger runs embedded on SQLite; without
    ``kafka_bootstrap`` projectors are fed in-process instead of via Kafka.
    """

    model_config = SettingsConfigDict(env_prefix="DEALLEDGER_", extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None,
        description="postgresql://user:password@host:port/dbname; unset means embedded SQLite",
    )
    database_schema: str = Field(
        default="public",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema holding events, positions and read models",
    )
    sqlite_path: Path = Field(default=DEFAULT_SQLITE_PATH, description="embedded store file")
    kafka_bootstrap: str | None = Field(default=None, description="host:port[,host:port...]")
    events_topic: str = "dealledger.events.v1"
    events_dlq_topic: str = "dealledger.events.dlq"
    commands_topic: str = "dealledger.commands.v1"
    command_results_topic: str = "dealledger.command-results.v1"
    commands_dlq_topic: str = "dealledger.commands.dlq"
    checkpoints_topic: str = "dealledger.checkpoints.v1"
    projector_group: str = Field(
        default="dealledger-projectors",
        min_length=1,
        max_length=200,
        description="consumer group of `dealledger project` (and of `project --status` and "
        "`rebuild`); its offsets are kept in PostgreSQL under this name",
    )
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    protection_days: int = Field(
        default=programme.PROTECTION_DAYS, ge=1, description="channel protection period"
    )
    max_extensions: int = Field(
        default=programme.MAX_EXTENSIONS, ge=0, description="times a protection may be extended"
    )
    auto_approve_limits: dict[str, Decimal] = Field(
        default_factory=lambda: dict(programme.AUTO_APPROVE_LIMITS),
        description="largest estimated value auto-approved, per currency (JSON object); "
        "a currency not listed always goes to review",
    )
    snapshot_interval: int = Field(default=100, ge=1, description="events between snapshots")
    aggregate_cache_size: int = Field(
        default=2000,
        ge=0,
        description="aggregates a process keeps in memory between commands (0: none); a "
        "cached aggregate is brought up to date from the store before each use",
    )
    approval_sla_hours: int = Field(default=48, ge=1)
    postgres_pool_size: int = Field(default=10, ge=1)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
    # -- HTTP API (infra/http) ------------------------------------------------------
    api_keys: dict[str, str] = Field(
        default_factory=dict,
        description="bootstrap API keys (JSON object): full key `dl_<id>_<secret>` -> "
        "`partner:CODE` or `ROLE:USER` (e.g. `admin:ops`); kept in memory, never stored",
    )
    api_read_wait_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="longest a query waits for `?min_position=` before answering 503",
    )

    # -- signed checkpoints of the ledger tree (infra/audit/checkpoints.py) -------------
    signing_key_file: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs checkpoints; make one with "
        "`dealledger signing-key create`",
    )
    signing_key: SecretStr | None = Field(
        default=None, description="the same key as PEM text, instead of a file"
    )
    checkpoint_public_key: str | None = Field(
        default=None,
        description="the public key `verify` trusts (base64 of the 32 raw bytes, as "
        "`signing-key create` prints it); default: derived from the signing key",
    )
    checkpoint_file: Path | None = Field(
        default=None,
        description="every checkpoint is also appended to this file (JSON Lines), to be "
        "shipped outside the database",
    )
    checkpoint_every_events: int = Field(
        default=1000, ge=1, description="a checkpoint once the tree grew by this many events"
    )
    checkpoint_every_seconds: float = Field(
        default=60.0, gt=0, description="or once this long passed since the last (if it grew)"
    )

    @field_validator("database_url")
    @classmethod
    def _must_be_postgres_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise ValueError("database_url must be a postgresql:// URL (leave unset for SQLite)")
        if not parts.hostname or not parts.path.strip("/"):
            raise ValueError("database_url needs a host and a database name")
        return value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _blank_means_unset(cls, value: str | None) -> str | None:
        return value or None

    @property
    def uses_postgres(self) -> bool:
        return self.database_url is not None

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in (self.kafka_bootstrap or "").split(",") if s.strip()]

    def eventsourcing_env(self) -> dict[str, str]:
        """Translate into the environment variables the ``eventsourcing`` library reads."""
        env = {
            "IS_SNAPSHOTTING_ENABLED": "y",
            "CREATE_TABLE": "y",
        }
        if self.database_url is None:
            env["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
            # Every stored event is hash-chained to its predecessor (tamper evidence).
            env["APPLICATION_RECORDER_TOPIC"] = "infra.store.recorders:HashChainingSQLiteRecorder"
            env["SQLITE_DBNAME"] = str(self.sqlite_path)
            return env
        parts = urlsplit(self.database_url)
        env.update(
            {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": parts.path.strip("/"),
                "POSTGRES_HOST": parts.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(parts.port or 5432),
                "POSTGRES_USER": unquote(parts.username or ""),
                "POSTGRES_PASSWORD": unquote(parts.password or ""),
                "POSTGRES_POOL_SIZE": str(self.postgres_pool_size),
                "POSTGRES_SCHEMA": self.database_schema,
                # Fail fast (and answer 503) rather than hang on a silent network.
                "POSTGRES_CONNECT_TIMEOUT": "10",
                "APPLICATION_RECORDER_TOPIC": "infra.store.recorders:HashChainingPostgresRecorder",
            }
        )
        if self.aggregate_cache_size:
            # Fast-forward reads the events stored since the cached version (by any
            # process) before each use, so a cached aggregate is never older than the
            # store was at the start of the command; the version check on save still
            # decides every race. PostgreSQL only: the ledger's own loader
            # (`DealLedger.load_many`) serves its cache, and an embedded store is
            # in-process already.
            env["AGGREGATE_CACHE_MAXSIZE"] = str(self.aggregate_cache_size)
            env["AGGREGATE_CACHE_FASTFORWARD"] = "y"
        return env

    def psycopg_conninfo(self) -> str:
        """The database URL in the form psycopg accepts (drops a SQLAlchemy-style suffix)."""
        if self.database_url is None:
            raise ValueError("no database_url configured (the embedded store is SQLite)")
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        url = self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        params = conninfo_to_dict(url)
        params.setdefault("connect_timeout", "10")
        if self.database_schema != "public":
            # Positions and read models live beside the events, in the same schema.
            params["options"] = f"-c search_path={self.database_schema}"
        return make_conninfo("", **params)
