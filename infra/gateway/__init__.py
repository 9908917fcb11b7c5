"""The command gateway between the edges (HTTP, the Kafka command topic, any later
page) and `commands/`: one place for who is calling and what they may do.

- `gateway.Gateway`: authenticate a key (`authenticate`, `principal_for_key_id`) and
  `issue(principal, command_type, fields, ...)` -> `Accepted`, or a refusal raised;
- `policy`: the per-command table (roles, partner scope, self-filled fields);
- `access`: the role gate and partner scoping, shared by commands and queries;
- `principals`, `keys`, `key_store`: API keys and the principals they name;
- `payloads`: commands built from a caller's fields;
- `problems`: the RFC 9457 catalogue and the mapping of refusals onto it.

Nothing here knows a transport: `infra.http` and `consumers.command_consumer`
translate to and from it.
"""
