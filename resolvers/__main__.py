"""``python -m resolvers``: print the GraphQL schema (SDL); ``schema.graphql`` is its output."""

from resolvers.schema import build_schema

print(build_schema().as_str())
