"""Everything that touches the database: schema, engine, migrations, partitions, reads, writes."""
