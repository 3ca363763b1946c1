"""``logloupe users``: accounts from the command line (the first admin, before anyone can log in)."""

from __future__ import annotations

from pathlib import Path

import click

from logloupe.serve.deps import Principal
from logloupe.settings import Settings


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
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default: LOGLOUPE_DATA_DIR or ~/.local/share/logloupe).",
)
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


commands: list[click.Command] = [users]
