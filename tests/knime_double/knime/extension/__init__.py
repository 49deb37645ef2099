"""Test double of `knime.extension` (KNIME's pure-Python node API), for running nodes in pytest.

Same names as the real module; importing it also installs the double's backends (port-type
registry, Arrow table backend) from _double_backend.py, which plays KNIME's side.
"""
import knime.api.schema as _ks
import knime.api.table as _kt
import knime.api.views as _kv
import knime.extension.nodes as _kn
import knime.extension.parameter as _kp

IntParameter = _kp.IntParameter
DoubleParameter = _kp.DoubleParameter
BoolParameter = _kp.BoolParameter
StringParameter = _kp.StringParameter
MultilineStringParameter = _kp.MultilineStringParameter
parameter_group = _kp.parameter_group
ColumnParameter = _kp.ColumnParameter
MultiColumnParameter = _kp.MultiColumnParameter
ColumnFilterParameter = _kp.ColumnFilterParameter
ColumnFilterConfig = _kp.ColumnFilterConfig
EnumParameter = _kp.EnumParameter
EnumParameterOptions = _kp.EnumParameterOptions
EnumSetParameter = _kp.EnumSetParameter
DateTimeParameter = _kp.DateTimeParameter
LocalPathParameter = _kp.LocalPathParameter
ParameterArray = _kp.ParameterArray
Version = _kp.Version
Effect = _kp.Effect
And = _kp.And
Or = _kp.Or
OneOf = _kp.OneOf
Contains = _kp.Contains
DialogContextCondition = _kp.DialogContextCondition
Condition = _kp.Condition
LayoutDirection = _kp.LayoutDirection

PortType = _kn.PortType
Port = _kn.Port
PortObject = _kn.PortObject
ConnectionPortObject = _kn.ConnectionPortObject
ViewDeclaration = _kn.ViewDeclaration
ConfigurationContext = _kn.ConfigurationContext
ExecutionContext = _kn.ExecutionContext
DialogCreationContext = _kn.DialogCreationContext
PythonNode = _kn.PythonNode
category = _kn.category
NodeType = _kn.NodeType
ImageFormat = _kn.ImageFormat
node = _kn.node
port_type = _kn.port_type
InvalidParametersError = _kn.InvalidParametersError
input_binary = _kn.input_binary
input_table = _kn.input_table
input_port = _kn.input_port
output_binary = _kn.output_binary
output_table = _kn.output_table
output_port = _kn.output_port
output_view = _kn.output_view
output_image = _kn.output_image
input_table_group = _kn.input_table_group
input_binary_group = _kn.input_binary_group
input_port_group = _kn.input_port_group
output_table_group = _kn.output_table_group
output_binary_group = _kn.output_binary_group
output_image_group = _kn.output_image_group
output_port_group = _kn.output_port_group
WorkflowExecutionError = _kn.WorkflowExecutionError

Table = _kt.Table
BatchOutputTable = _kt.BatchOutputTable

KnimeType = _ks.KnimeType
PrimitiveTypeId = _ks.PrimitiveTypeId
DictEncodingKeyType = _ks.DictEncodingKeyType
PrimitiveType = _ks.PrimitiveType
ListType = _ks.ListType
StructType = _ks.StructType
LogicalType = _ks.LogicalType
int32 = _ks.int32
int64 = _ks.int64
double = _ks.double
bool_ = _ks.bool_
string = _ks.string
blob = _ks.blob
list_ = _ks.list_
struct = _ks.struct
logical = _ks.logical
datetime = _ks.datetime
null = _ks.null
supported_value_types = _ks.LogicalType.supported_value_types
PortObjectSpec = _ks.PortObjectSpec
BinaryPortObjectSpec = _ks.BinaryPortObjectSpec
ImagePortObjectSpec = _ks.ImagePortObjectSpec
Column = _ks.Column
Schema = _ks.Schema

view = _kv.view
view_ipy_repr = _kv.view_ipy_repr
view_html = _kv.view_html
view_svg = _kv.view_svg
view_png = _kv.view_png
view_jpeg = _kv.view_jpeg
view_plotly = _kv.view_plotly
view_matplotlib = _kv.view_matplotlib
view_seaborn = _kv.view_seaborn

import knime.extension._double_backend as _double_backend  # noqa: E402,F401  (installs the backends)
