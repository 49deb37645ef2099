"""Double of `knime.api`: schema (types, specs), table (Table, BatchOutputTable), views."""
