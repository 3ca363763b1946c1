"""``logloupe users``: accounts from the command line (the first admin, before anyone can log in)."""

from __future__ import annotations

from pathlib import Path

import click

from logloupe.serve.deps import Principal
from logloupe.settings import Settings

_data_dir = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default: LOGLOUPE_DATA_DIR or ~/.local/share/logloupe).",
)


@click.group()
def users() -> None:
    """Manage accounts (for a server run with --auth)."""


@users.command(name="create-admin")
@click.option("--username", required=True, help="Login name: 3 to 64 letters, digits, '.', '_' or '-'.")
@click.option("--email", required=True, help="Email address (also accepted at login).")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="LOGLOUPE_ADMIN_PASSWORD",
    help="Password (prompted when absent; or LOGLOUPE_ADMIN_PASSWORD).",
)
@click.option("--tenant", default=None, help="Organisation name (default: the default tenant).")
@_data_dir
def create_admin(username: str, email: str, password: str, tenant: str | None, data_dir: Path | None) -> None:
    """Create an admin account and its organisation (or make it admin of an existing one by name)."""
    from logloupe.serve.api.auth import validate_account, validate_org_name
    from logloupe.serve.auth import password_hasher
    from logloupe.store.accounts import Accounts
    from logloupe.store.meta import MetaStore

    settings = Settings.load(data_dir=data_dir)
    validate_account(username, email, password)
    meta = MetaStore(settings.data_dir / "meta.db")
    try:
        accounts = Accounts(meta)
        if tenant is None:
            tenant_id = meta.ensure_tenant(settings.default_tenant, retention_days=settings.retention_days).id
        else:
            name = validate_org_name(tenant)
            tenant_id = accounts.tenant_by_name(name) or accounts.create_tenant(name, settings.retention_days)
        user = accounts.create_user(username, email, password_hasher(settings).hash(password))
        accounts.add_member(tenant_id, user.id, "admin")
        who = Principal(tenant=tenant_id, user=user.username, role="admin", via="cli")
    finally:
        meta.close()
    click.echo(f"created admin {who.user} ({user.id}) of tenant {who.tenant}")


@users.command(name="set-password")
@click.option("--username", required=True, help="Username or email of the account.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="LOGLOUPE_NEW_PASSWORD",
    help="New password (prompted when absent; or LOGLOUPE_NEW_PASSWORD).",
)
@_data_dir
def set_password(username: str, password: str, data_dir: Path | None) -> None:
    """Set an account's password (recovery); its sessions end and its lockout is cleared."""
    from logloupe.errors import NotFound
    from logloupe.serve.api.auth import validate_account
    from logloupe.serve.auth import password_hasher
    from logloupe.store.accounts import Accounts
    from logloupe.store.meta import MetaStore

    settings = Settings.load(data_dir=data_dir)
    meta = MetaStore(settings.data_dir / "meta.db")
    try:
        accounts = Accounts(meta)
        user = accounts.find_user(username)
        if user is None:
            raise NotFound(f"no account {username!r}")
        validate_account(user.username, user.email, password)
        accounts.set_password_hash(user.id, password_hasher(settings).hash(password))
        accounts.revoke_all_refresh(user.id)
        accounts.clear_attempts(f"user:{user.id}")
    finally:
        meta.close()
    click.echo(f"password set for {user.username}; their sessions have ended")


@users.command(name="list")
@_data_dir
def list_users(data_dir: Path | None) -> None:
    """Accounts with their organisations and roles."""
    import sqlalchemy as sa

    from logloupe.store.accounts import Accounts
    from logloupe.store.meta import MetaStore
    from logloupe.store.meta import users as users_table

    settings = Settings.load(data_dir=data_dir)
    meta = MetaStore(settings.data_dir / "meta.db")
    try:
        accounts = Accounts(meta)
        with meta.engine.connect() as conn:
            rows = conn.execute(sa.select(users_table).order_by(users_table.c.username)).all()
        for r in rows:
            orgs = ", ".join(f"{m['name']} ({m['tenant']}): {m['role']}" for m in accounts.tenants_of(r.id))
            click.echo(f"{r.username}\t{r.email}\t{orgs or '-'}")
    finally:
        meta.close()


commands: list[click.Command] = [users]
