"""`import knime.extension as knext`: the pure-Python node API (test double)."""
from knime.api.schema import (Column, KnimeType, ListType, LogicalType, PortObjectSpec, Schema,  # noqa: F401
                              StructType, blob, bool_, datetime, double, int32, int64, list_, logical, string, struct)
from knime.api.table import BatchOutputTable, Table  # noqa: F401
from knime.api.views import (view, view_html, view_jpeg, view_matplotlib, view_plotly, view_png,  # noqa: F401
                             view_seaborn, view_svg)

from ._contexts import ConfigurationContext, DialogCreationContext, ExecutionContext  # noqa: F401
from ._ports import (BinaryPortObjectSpec, ConnectionPortObject, ImageFormat, ImagePortObjectSpec,  # noqa: F401
                     PortObject, PortType, port_type)
from ._version import Version  # noqa: F401
from .nodes import (NodeType, PythonNode, category, input_binary, input_binary_group, input_port,  # noqa: F401
                    input_port_group, input_table, input_table_group, node, output_binary, output_binary_group,
                    output_image, output_image_group, output_port, output_port_group, output_table,
                    output_table_group, output_view)
from .parameter import (And, BoolParameter, ColumnFilterConfig, ColumnFilterParameter, ColumnParameter,  # noqa: F401
                        Condition, Contains, DateTimeParameter, DoubleParameter, Effect, EnumParameter,
                        EnumParameterOptions, EnumSetParameter, IntParameter, InvalidParametersError, LayoutDirection,
                        LocalPathParameter, MultiColumnParameter, MultilineStringParameter, OneOf, Or, ParameterArray,
                        StringParameter, parameter_group)
