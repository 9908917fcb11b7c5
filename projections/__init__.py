"""CQRS read models, built from EventMessages by `projections.projector.apply_message`.

- `store`: `ReadStore` (one SQL schema for PostgreSQL and SQLite), `dump_tables`
- `projector`: `PROJECTIONS`, `apply_message`, `projection_position`, `applied_version`
- `pipeline`: `pipeline_rows`, `pipeline_totals`
- `attribution`: `partner_attribution`
- `registration_queue`: `review_queue`, `open_conflicts`
- `events`: decoding and schema checks of each event's `data`
- `message`: the EventMessage contract
"""
