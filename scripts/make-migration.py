"""Write an Alembic migration for the difference between the models and the migrations.

Usage: .venv/bin/python scripts/make-migration.py "what changed"
It upgrades a scratch SQLite database to head, then autogenerates the next revision
into src/openhmo/db/migrations/versions. Read the result before committing it.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config

from openhmo.db import MIGRATIONS_DIR, make_engine, migrate


def main() -> None:
    message = sys.argv[1] if len(sys.argv) > 1 else "schema change"
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'scratch.db'}"
        engine = make_engine(url)
        migrate(engine)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("sqlalchemy.url", url)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            existing = sorted(MIGRATIONS_DIR.joinpath("versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
            rev_id = f"{len(existing) + 1:04d}"
            command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
    # The generated file is formatted like the rest of the code.
    subprocess.run(
        [sys.executable, "-m", "ruff", "format", str(MIGRATIONS_DIR / "versions")], check=False
    )


if __name__ == "__main__":
    main()
