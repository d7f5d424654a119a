"""Validation of submitted job specifications, as UCloud does it on create.

Every item is checked fully and every problem reported with the item's index and a field path,
so a client can fix the whole request at once.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from jobgate.domain.catalog import Application, Catalog, render_command
from jobgate.domain.job import JobSpecification
from jobgate.domain.paths import file_values, path_problem
from jobgate.domain.values import ParameterValue, PeerValue, TextValue
from jobgate.errors import UserErrorCode, UserProblem

NAME_PATTERN = re.compile(r"[\w ():_-]+")
NAME_MAX_LENGTH = 200
MAX_REPLICAS = 1000
# Peer hostnames are DNS labels (UCloud's rule).
HOSTNAME_PATTERN = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
HOSTNAME_MAX_LENGTH = 250
# A whole argument that is one parameter: its value alone makes the argument.
WHOLE_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# A command line well within what Linux runs (one argument: 128 KiB; all with environment:
# a quarter of the stack limit, usually 2 MiB).
COMMAND_MAX_BYTES = 256 * 1024


def validate_specifications(
    specs: Sequence[JobSpecification], catalog: Catalog
) -> tuple[list[JobSpecification], list[UserProblem]]:
    """The specifications with defaults filled in, and every problem found in any of them."""
    normalized: list[JobSpecification] = []
    problems: list[UserProblem] = []
    for index, spec in enumerate(specs):
        spec, found = _validate_one(spec, catalog)
        normalized.append(spec)
        problems.extend(
            UserProblem(code, message, index=index, field=field) for code, field, message in found
        )
    return normalized, problems


_Found = list[tuple[UserErrorCode, tuple[str, ...], str]]
SHOWN_MAX_LENGTH = 100


def shown(text: str) -> str:
    """`text` as an error message repeats it: cut short, so a huge value is not echoed whole."""
    if len(text) <= SHOWN_MAX_LENGTH:
        return text
    return text[:SHOWN_MAX_LENGTH] + f"… ({len(text)} characters)"


def _validate_one(spec: JobSpecification, catalog: Catalog) -> tuple[JobSpecification, _Found]:
    found: _Found = []
    invalid = UserErrorCode.INVALID_PARAMETER

    if spec.name is not None:
        if len(spec.name) > NAME_MAX_LENGTH:
            found.append(
                (invalid, ("name",), f"name may have at most {NAME_MAX_LENGTH} characters")
            )
        elif not NAME_PATTERN.fullmatch(spec.name):
            found.append(
                (invalid, ("name",), "name may contain only letters, digits, spaces and ():_-")
            )
    if spec.replicas < 1:
        found.append((invalid, ("replicas",), "replicas must be at least 1"))
    elif spec.replicas > MAX_REPLICAS:
        found.append((invalid, ("replicas",), f"replicas may be at most {MAX_REPLICAS}"))
    if spec.time_allocation is not None:
        for part, message in spec.time_allocation.problems("timeAllocation"):
            found.append((invalid, ("timeAllocation", *part), message))
    if spec.ssh_enabled:
        found.append(
            (UserErrorCode.NOT_SUPPORTED, ("sshEnabled",), "no application here offers SSH access")
        )
    found.extend(_resource_problems(spec))
    for field, file in file_values(spec):
        problem = path_problem(file.path)
        if problem is not None:
            found.append((invalid, field, problem))
    if spec.opened_file is not None:
        problem = path_problem(spec.opened_file)
        if problem is not None:
            found.append((invalid, ("openedFile",), problem))

    product = catalog.product(spec.product)
    if product is None:
        ref = spec.product
        found.append(
            (
                UserErrorCode.UNKNOWN_PRODUCT,
                ("product",),
                f"provider '{shown(ref.provider)}' has no product '{shown(ref.id)}' "
                f"in category '{shown(ref.category)}'",
            )
        )

    app = catalog.application(spec.application)
    if app is None:
        found.append(
            (
                UserErrorCode.UNKNOWN_APPLICATION,
                ("application",),
                f"no application '{shown(spec.application.name)}' "
                f"version '{shown(spec.application.version)}'",
            )
        )
        return spec, found

    given: dict[str, object] = {}
    for name, value in spec.parameters:
        path = ("parameters", name)
        parameter = app.parameter(name)
        if name in given:
            found.append((invalid, path, f"parameter '{name}' is given more than once"))
        elif parameter is None:
            found.append((invalid, path, f"application '{app.name}' has no parameter '{name}'"))
        else:
            problem = parameter.value_problem(value)
            if problem is not None:
                found.append((invalid, path, problem))
        given[name] = value

    filled = list(spec.parameters)
    for parameter in app.parameters:
        if parameter.name in given:
            continue
        if parameter.default is not None:
            filled.append((parameter.name, parameter.default))
        elif not parameter.optional:
            found.append(
                (
                    invalid,
                    ("parameters", parameter.name),
                    f"parameter '{parameter.name}' is required",
                )
            )
    if not found:
        found.extend(_argument_problems(app, dict(filled)))
    return dataclasses.replace(spec, parameters=tuple(filled)), found


def _argument_problems(app: Application, parameters: dict[str, ParameterValue]) -> _Found:
    """What the command line would get wrong: a text that a program would take for one of its
    options, or a command line longer than the system runs."""
    found: _Found = []
    options_end = app.command.index("--") if "--" in app.command else len(app.command)
    for position, template in enumerate(app.command[:options_end]):
        match = WHOLE_PLACEHOLDER.fullmatch(template)
        value = parameters.get(match.group(1)) if match else None
        parameter = app.parameter(match.group(1)) if match else None
        if (
            isinstance(value, TextValue)
            and value.value.startswith("-")
            and parameter is not None
            and parameter.options is None  # the application's own choices are meant
            and position > 0
        ):
            found.append(
                (
                    UserErrorCode.INVALID_PARAMETER,
                    ("parameters", parameter.name),
                    f"'{value.value[:40]}' would be read as an option of '{app.command[0]}'; "
                    "the application takes it only after '--'",
                )
            )
    size = sum(len(argument.encode()) + 1 for argument in render_command(app.command, parameters))
    if size > COMMAND_MAX_BYTES:
        found.append(
            (
                UserErrorCode.INVALID_PARAMETER,
                ("parameters",),
                f"the command line would have {size} bytes; at most {COMMAND_MAX_BYTES} run",
            )
        )
    return found


def _resource_problems(spec: JobSpecification) -> _Found:
    found: _Found = []
    hostnames: set[str] = set()
    peers = [("resources", str(i), v) for i, v in enumerate(spec.resources)]
    peers += [("parameters", name, v) for name, v in spec.parameters]
    for where, key, value in peers:
        if not isinstance(value, PeerValue):
            continue
        path = (where, key, "hostname")
        if len(value.hostname) > HOSTNAME_MAX_LENGTH or not HOSTNAME_PATTERN.fullmatch(
            value.hostname
        ):
            found.append((UserErrorCode.INVALID_PARAMETER, path, "hostname is not a DNS label"))
        elif value.hostname in hostnames:
            found.append((UserErrorCode.INVALID_PARAMETER, path, "peer hostnames must be unique"))
        hostnames.add(value.hostname)
    return found
