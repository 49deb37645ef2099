"""KNIME node glue: thin wrappers from KNIME's Python node API to uop_engine and llm."""
