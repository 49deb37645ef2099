"""Test double of KNIME's `knime` Python package (only `knime.api` and `knime.extension`).

Written for this project's tests from the public description of the API in
shared/KNIME_API.md; it runs pure-Python KNIME nodes in pytest without KNIME.
"""
