"""Node parameters (dialog settings), parameter groups, rules, and the settings JSON functions."""
from ._param_base import (And, Condition, Contains, Effect, InvalidParametersError, LayoutDirection,  # noqa: F401
                          OneOf, Or, ParameterBase)
from ._param_columns import (ColumnFilterConfig, ColumnFilterParameter, ColumnParameter,  # noqa: F401
                             MultiColumnParameter)
from ._param_group import ParameterArray, extract_values, is_group, parameter_group, parameters_of  # noqa: F401
from ._param_kinds import (BoolParameter, DateTimeParameter, DoubleParameter, EnumParameter,  # noqa: F401
                           EnumParameterOptions, EnumSetParameter, IntParameter, LocalPathParameter,
                           MultilineStringParameter, StringParameter)
from ._settings import (describe_options, dialog_schema, extract_settings,  # noqa: F401
                        load_settings, ui_schema, validate_settings)
