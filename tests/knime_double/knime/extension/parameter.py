"""Double of knime.extension.parameter: parameter classes, groups, rules, and the functions
KNIME's backend calls on a node (`extract_parameters`, `inject_parameters`,
`validate_parameters`, `validate_specs`, `extract_schema`, `extract_ui_schema`,
`extract_parameter_descriptions`, `set_extension_version`). Split over _parameter_*.py and
_column_parameters.py to keep files small; import from here.
"""
from ._column_parameters import (ColumnFilterConfig, ColumnFilterMode, ColumnFilterParameter,  # noqa: F401
                                 ColumnParameter, ManualFilterConfig, MultiColumnParameter, PatternFilterConfig,
                                 TypeFilterConfig, _BaseColumnParameter, _pick_spec)
from ._parameter_base import (LOGGER, And, Condition, Contains, DialogContextCondition, Effect,  # noqa: F401
                              LayoutDirection, OneOf, Or, Rule, _BaseParameter, _get_extension_version,
                              _get_parameters, _is_array, _is_group, _Scope, extract_parameter_descriptions,
                              extract_parameters, extract_schema, extract_ui_schema, inject_parameters,
                              set_extension_version, validate_parameters, validate_specs)
from ._datetime_parameter import DateTimeParameter  # noqa: F401
from ._parameter_group import GetSetBase, ParameterArray, parameter_group  # noqa: F401
from ._parameter_types import (BoolParameter, DoubleParameter, EnumParameter,  # noqa: F401
                               EnumParameterOptions, EnumSetParameter, IntParameter, LocalPathParameter,
                               MultilineStringParameter, StringParameter, _NumericParameter)
from knime.extension.version import Version  # noqa: F401,E402
