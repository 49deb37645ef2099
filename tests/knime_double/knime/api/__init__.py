"""Column types, schemas, tables and views shared by every KNIME Python API."""
