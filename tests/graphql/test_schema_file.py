"""The committed ``schema.graphql`` is the schema the code serves.

Regenerate it with ``.venv/bin/python -m resolvers > schema.graphql`` and commit
the diff: frontend teams review schema changes there.
"""

from pathlib import Path

from resolvers.schema import build_schema

schema = build_schema()


def test_schema_graphql_matches_the_code(repo_root: Path) -> None:
    committed = (repo_root / "schema.graphql").read_text()
    assert committed == schema.as_str() + "\n", (
        "schema.graphql is out of date: run `.venv/bin/python -m resolvers > schema.graphql`"
    )
