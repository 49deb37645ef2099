"""Test double of KNIME's `knime` Python package (only what pure-Python node extensions use).

It is put on sys.path by tests/conftest.py when the real `knime.extension` is not importable.
Module layout mirrors the real one: `knime.extension` (nodes, parameter, version) and
`knime.api` (schema, table, views). See knime/extension/_double_backend.py for the part that
plays KNIME's Java side (port registry, contexts, settings and port-object transport).
"""
