"""`import knime.extension as knext`: the pure-Python node API (test double)."""
from knime.api.schema import (BlobType, BooleanType, Column, DoubleType, IntType, KnimeType, ListType,  # noqa: F401
                              LogicalType, PortObjectSpec, Schema, StringType, StructType, blob, bool_, datetime,
                              double, int32, int64, list_, logical, string, struct)
from knime.api.table import BatchOutputTable, Table  # noqa: F401
from knime.api.views import (NodeView, view, view_html, view_jpeg, view_matplotlib, view_plotly,  # noqa: F401
                             view_png, view_seaborn, view_svg)

from ._contexts import ConfigurationContext, Credentials, DialogCreationContext, ExecutionContext  # noqa: F401
from ._ports import (BinaryPortObjectSpec, ConnectionPortObject, ImageFormat, ImagePortObjectSpec,  # noqa: F401
                     PortObject, PortType, port_type)
from .nodes import (NodeType, category, input_binary, input_port, input_port_group, input_table,  # noqa: F401
                    input_table_group, node, output_binary, output_image, output_port, output_port_group,
                    output_table, output_table_group, output_view)
from .parameter import (And, BoolParameter, ColumnFilterConfig, ColumnFilterParameter, ColumnParameter,  # noqa: F401
                        DateTimeParameter, DoubleParameter, Effect, EnumParameter, EnumParameterOptions,
                        EnumSetParameter, IntParameter, InvalidParametersError, LocalPathParameter,
                        MultiColumnParameter, MultilineStringParameter, OneOf, Or, ParameterArray, StringParameter,
                        parameter_group)
