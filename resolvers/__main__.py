"""``python -m resolvers``: print the GraphQL schema (SDL); ``schema.graphql`` is its output."""

from resolvers.schema import schema

print(schema.as_str())
