"""Applications and products: what can run, and where."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from jobgate.domain.values import (
    BooleanValue,
    FileValue,
    FloatingPointValue,
    IngressValue,
    IntegerValue,
    LicenseServerValue,
    ModulesValue,
    NameAndVersion,
    NetworkValue,
    ParameterValue,
    PeerValue,
    ProductReference,
    TextValue,
)


class ParameterType(enum.StrEnum):
    INPUT_FILE = "INPUT_FILE"
    INPUT_DIRECTORY = "INPUT_DIRECTORY"
    TEXT = "TEXT"
    TEXTAREA = "TEXTAREA"
    INTEGER = "INTEGER"
    FLOATING_POINT = "FLOATING_POINT"
    BOOLEAN = "BOOLEAN"
    ENUMERATION = "ENUMERATION"
    PEER = "PEER"
    LICENSE_SERVER = "LICENSE_SERVER"
    NETWORK_IP = "NETWORK_IP"
    INGRESS = "INGRESS"
    MODULE_LIST = "MODULE_LIST"


# Which value variants fit which parameter type (UCloud's "Bad value" check).
_FITTING_VALUES: dict[ParameterType, tuple[type[ParameterValue], ...]] = {
    ParameterType.INPUT_FILE: (FileValue,),
    ParameterType.INPUT_DIRECTORY: (FileValue,),
    ParameterType.TEXT: (TextValue,),
    ParameterType.TEXTAREA: (TextValue,),
    ParameterType.INTEGER: (IntegerValue,),
    ParameterType.FLOATING_POINT: (FloatingPointValue,),
    ParameterType.BOOLEAN: (BooleanValue,),
    ParameterType.ENUMERATION: (TextValue,),
    ParameterType.PEER: (PeerValue,),
    ParameterType.LICENSE_SERVER: (LicenseServerValue,),
    ParameterType.NETWORK_IP: (NetworkValue,),
    ParameterType.INGRESS: (IngressValue,),
    ParameterType.MODULE_LIST: (ModulesValue,),
}

# One text parameter (Linux takes at most 128 KiB in one argument).
TEXT_MAX_BYTES = 64 * 1024

_EXPECTED_NAMES: dict[type[ParameterValue], str] = {
    FileValue: "file",
    TextValue: "text",
    IntegerValue: "integer",
    FloatingPointValue: "floatingPoint",
    BooleanValue: "boolean",
    PeerValue: "peer",
    LicenseServerValue: "licenseServer",
    NetworkValue: "network",
    IngressValue: "ingress",
    ModulesValue: "modules",
}


@dataclass(frozen=True, slots=True)
class ApplicationParameter:
    name: str
    type: ParameterType
    optional: bool = False
    default: ParameterValue | None = None
    title: str | None = None
    description: str | None = None
    options: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None

    def value_problem(self, value: ParameterValue) -> str | None:
        """Why `value` does not fit this parameter, or None when it does."""
        fitting = _FITTING_VALUES[self.type]
        if not isinstance(value, fitting):
            wanted = " or ".join(_EXPECTED_NAMES[cls] for cls in fitting)
            return f"parameter '{self.name}' of type {self.type} takes a {wanted} value"
        if isinstance(value, TextValue) and "\0" in value.value:
            return f"parameter '{self.name}' may not contain NUL bytes"
        if isinstance(value, TextValue) and len(value.value.encode()) > TEXT_MAX_BYTES:
            return f"parameter '{self.name}' may have at most {TEXT_MAX_BYTES} bytes"
        if (
            self.options is not None
            and isinstance(value, TextValue)
            and value.value not in self.options
        ):
            return f"parameter '{self.name}' must be one of: {', '.join(self.options)}"
        if isinstance(value, IntegerValue | FloatingPointValue):
            if self.min is not None and value.value < self.min:
                return f"parameter '{self.name}' must be at least {self.min:g}"
            if self.max is not None and value.value > self.max:
                return f"parameter '{self.name}' must be at most {self.max:g}"
        return None


# `{port}` in an interactive application's command: the port the gateway gives each replica.
PORT_PLACEHOLDER = "port"


@dataclass(frozen=True, slots=True)
class Interfaces:
    """What an application serves while it runs: a web app, a VNC desktop (on `{port}`)."""

    web: bool = False
    vnc: bool = False
    keep_prefix: bool = False  # a web app sent whole paths (it knows its base path)

    @property
    def any(self) -> bool:
        return self.web or self.vnc


@dataclass(frozen=True, slots=True)
class Application:
    """An application the gateway can run; `command` holds `{parameter}` placeholders (and
    `{port}`, given per replica, when it is interactive)."""

    name: str
    version: str
    command: tuple[str, ...]
    parameters: tuple[ApplicationParameter, ...] = ()
    title: str | None = None
    description: str | None = None
    interactive: Interfaces = Interfaces()

    @property
    def key(self) -> NameAndVersion:
        return NameAndVersion(self.name, self.version)

    def parameter(self, name: str) -> ApplicationParameter | None:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        return None


@dataclass(frozen=True, slots=True)
class ComputeSupport:
    """Optional abilities of a product, as data."""

    logs: bool = False
    time_extension: bool = False
    suspension: bool = False
    # Interactive sessions (left out with `[sessions] enabled = false`).
    web: bool = False
    terminal: bool = False
    vnc: bool = False


@dataclass(frozen=True, slots=True)
class Product:
    name: str
    category: str
    provider: str
    support: ComputeSupport = ComputeSupport()
    description: str | None = None
    cpu: int | None = None
    memory_in_gigs: int | None = None
    gpu: int | None = None
    network: bool = False  # whether its jobs may reach the network (the local sandbox's rule)

    @property
    def reference(self) -> ProductReference:
        return ProductReference(self.name, self.category, self.provider)


class Catalog:
    """Read-only lookup of applications and products, built once from the settings."""

    def __init__(self, applications: Iterable[Application], products: Iterable[Product]) -> None:
        self._applications: dict[NameAndVersion, Application] = {}
        for app in applications:
            self._applications[app.key] = app
        self._products: dict[ProductReference, Product] = {p.reference: p for p in products}

    @property
    def applications(self) -> list[Application]:
        return list(self._applications.values())

    @property
    def products(self) -> list[Product]:
        return list(self._products.values())

    def application(self, key: NameAndVersion) -> Application | None:
        return self._applications.get(key)

    def product(self, reference: ProductReference) -> Product | None:
        return self._products.get(reference)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render_command(
    command: Iterable[str], parameters: Mapping[str, ParameterValue], port: int | str | None = None
) -> list[str]:
    """The argument list with `{name}` placeholders replaced by parameter values, and `{port}`
    by `port` (given for an interactive application's replica; `"{port}"` keeps it for the
    bridge on a compute node to fill in).

    Each argument stays one argument whatever its value holds: no shell ever sees it. An argument
    that names an absent optional parameter is left out.
    """
    values = {name: value_as_argument(value) for name, value in parameters.items()}
    if port is not None:
        values[PORT_PLACEHOLDER] = str(port)
    argv: list[str] = []
    for template in command:
        names = _PLACEHOLDER.findall(template)
        if any(name not in values for name in names):
            continue
        argv.append(_PLACEHOLDER.sub(lambda match: values[match.group(1)], template))
    return argv


def value_as_argument(value: ParameterValue) -> str:
    """How a parameter value is written on a command line."""
    match value:
        case BooleanValue(value=flag):
            return "true" if flag else "false"
        case FileValue(path=path):
            return path
        case ModulesValue(modules=modules):
            return ",".join(modules)
        case PeerValue(hostname=hostname):
            return hostname
        case TextValue(value=text):
            return text
        case IntegerValue(value=number):
            return str(number)
        case FloatingPointValue(value=number):
            return repr(number)
        case _:
            return value.id
