"""The contexts KNIME passes to configure (ConfigurationContext), execute (ExecutionContext) and to
`choices` callables when a dialog opens (DialogCreationContext)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from ._host import HostContext


class Credentials:
    """A workflow credential: user name and password (the password never shows in repr)."""

    def __init__(self, username: str, password: str, credential_name: str) -> None:
        self.username, self.password, self.credential_name = username, password, credential_name

    def __repr__(self) -> str:
        return f"Credentials('{self.credential_name}', username='{self.username}', password=***)"


class _Context:
    def __init__(self, host: HostContext) -> None:
        self._host = host

    @property
    def _java_ctx(self) -> HostContext:
        """KNIME's side of the context (the name some of this project's tests use for it)."""
        return self._host

    @property
    def flow_variables(self) -> Dict[str, Any]:
        """The node's flow variables: a dict to read and change in place (there is no setter, as in
        KNIME); changes are pushed downstream when the call returns."""
        return self._host.flow_variables

    def get_credential_names(self) -> List[str]:
        return list(self._host.credentials)

    def get_credentials(self, identifier: str) -> Credentials:
        if identifier not in self._host.credentials:
            raise KeyError(f"no credentials named '{identifier}' in this workflow; available: "
                           f"{list(self._host.credentials)}")
        user, password = self._host.credentials[identifier]
        return Credentials(user, password, identifier)


class ConfigurationContext(_Context):
    """What configure() may ask KNIME for."""

    def set_warning(self, message: str) -> None:
        if not isinstance(message, str):
            raise TypeError(f"set_warning takes a str message, not {type(message).__name__}")
        self._host.warnings.append(message)

    def get_connected_input_port_numbers(self) -> List[int]:
        """Per input port, the number of ports connected to it: 1 for a connected port, 0 for an
        unconnected optional one, the count of connected ports for a port group."""
        return list(self._host.input_connected)

    def get_connected_output_port_numbers(self) -> List[int]:
        return list(self._host.output_connected)


class ExecutionContext(ConfigurationContext):
    """What execute() may ask KNIME for: also progress, cancellation and the workflow's folders."""

    def set_progress(self, progress: float, message: Optional[str] = None) -> None:
        if isinstance(progress, bool) or not isinstance(progress, (int, float)):
            raise TypeError(f"set_progress takes a number between 0.0 and 1.0, not {type(progress).__name__}")
        if not 0.0 <= progress <= 1.0:
            raise ValueError(f"progress must be between 0.0 and 1.0, got {progress}")
        if message is not None and not isinstance(message, str):
            raise TypeError(f"the progress message must be a str or None, not {type(message).__name__}")
        self._host.progress.append((float(progress), message))

    def is_canceled(self) -> bool:
        """True once the user has cancelled: stop and raise (KNIME discards the outputs anyway)."""
        return self._host.poll_canceled()

    def get_workflow_temp_dir(self) -> str:
        return self._host.temp_dir()

    def get_workflow_data_area_dir(self) -> str:
        """The workflow's `data` folder: files there travel with the workflow."""
        return self._host.data_area_dir()


class DialogCreationContext(_Context):
    """Passed to `choices` callables while KNIME builds a node's dialog."""

    def get_input_specs(self) -> List[Any]:
        return list(self._host.input_specs)
