"""The data layer: the one place that decides (tenancy, permissions, rules, writes).

Every public function takes the caller's ``Principal`` first and returns plain
dicts ready to serialize; the doors (REST, GraphQL, channels) only parse,
call and serialize.
"""
