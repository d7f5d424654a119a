"""Submit validation, as UCloud does it on create."""

from __future__ import annotations

import dataclasses

import pytest

from jobgate.domain.catalog import (
    Application,
    ApplicationParameter,
    Catalog,
    ParameterType,
    Product,
)
from jobgate.domain.job import JobSpecification
from jobgate.domain.validation import validate_specifications
from jobgate.domain.values import (
    BooleanValue,
    FileValue,
    IntegerValue,
    NameAndVersion,
    PeerValue,
    ProductReference,
    SimpleDuration,
    TextValue,
)
from jobgate.errors import UserErrorCode

APP = Application(
    "shout",
    "2",
    ("printf", "{word}"),
    (
        ApplicationParameter("word", ParameterType.TEXT),
        ApplicationParameter("times", ParameterType.INTEGER, optional=True, min=1, max=10),
        ApplicationParameter(
            "mode", ParameterType.ENUMERATION, default=TextValue("a"), options=("a", "b")
        ),
    ),
)
PRODUCT = Product("cpu-small", "cpu", "local")
CATALOG = Catalog([APP], [PRODUCT])
GOOD = JobSpecification(
    application=APP.key,
    product=PRODUCT.reference,
    name="ok name (1)_-:",
    parameters=(("word", TextValue("hi")),),
)


def problems_of(**changes: object) -> list[tuple[UserErrorCode, tuple[str, ...] | None]]:
    spec = dataclasses.replace(GOOD, **changes)  # type: ignore[arg-type]
    _, problems = validate_specifications([spec], CATALOG)
    return [(p.code, p.field) for p in problems]


def test_a_valid_spec_gets_its_defaults_filled_in() -> None:
    specs, problems = validate_specifications([GOOD], CATALOG)
    assert problems == []
    assert specs[0].parameters == (("word", TextValue("hi")), ("mode", TextValue("a")))


def test_the_application_and_version_must_exist() -> None:
    assert problems_of(application=NameAndVersion("shout", "3")) == [
        (UserErrorCode.UNKNOWN_APPLICATION, ("application",))
    ]


def test_the_product_must_exist_at_that_provider() -> None:
    assert problems_of(product=ProductReference("cpu-small", "cpu", "elsewhere")) == [
        (UserErrorCode.UNKNOWN_PRODUCT, ("product",))
    ]


def test_unknown_parameters_are_rejected() -> None:
    found = problems_of(parameters=(("word", TextValue("x")), ("colour", TextValue("red"))))
    assert found == [(UserErrorCode.INVALID_PARAMETER, ("parameters", "colour"))]


def test_parameters_must_have_the_right_type() -> None:
    found = problems_of(parameters=(("word", IntegerValue(3)),))
    assert found == [(UserErrorCode.INVALID_PARAMETER, ("parameters", "word"))]


def test_integer_bounds_and_enumeration_options_are_enforced() -> None:
    found = problems_of(
        parameters=(("word", TextValue("x")), ("times", IntegerValue(11)), ("mode", TextValue("c")))
    )
    assert found == [
        (UserErrorCode.INVALID_PARAMETER, ("parameters", "times")),
        (UserErrorCode.INVALID_PARAMETER, ("parameters", "mode")),
    ]


def test_required_parameters_must_be_present() -> None:
    assert problems_of(parameters=()) == [(UserErrorCode.INVALID_PARAMETER, ("parameters", "word"))]


def test_a_parameter_given_twice_is_rejected() -> None:
    found = problems_of(parameters=(("word", TextValue("a")), ("word", TextValue("b"))))
    assert found == [(UserErrorCode.INVALID_PARAMETER, ("parameters", "word"))]


@pytest.mark.parametrize("name", ["semi;colon", "a/b", "", "x" * 201, "tab\there"])
def test_names_must_match_the_pattern_and_length(name: str) -> None:
    assert problems_of(name=name) == [(UserErrorCode.INVALID_PARAMETER, ("name",))]


def test_a_name_of_200_characters_is_fine() -> None:
    assert problems_of(name="x" * 200) == []


@pytest.mark.parametrize("replicas", [0, -1])
def test_replicas_must_be_at_least_one(replicas: int) -> None:
    assert problems_of(replicas=replicas) == [(UserErrorCode.INVALID_PARAMETER, ("replicas",))]


@pytest.mark.parametrize(
    ("duration", "field"),
    [
        (SimpleDuration(0, 0, 0), ("timeAllocation",)),
        (SimpleDuration(1, 60, 0), ("timeAllocation", "minutes")),
        (SimpleDuration(1, 0, 60), ("timeAllocation", "seconds")),
        (SimpleDuration(-1, 0, 0), ("timeAllocation", "hours")),
    ],
)
def test_time_allocations_must_be_above_zero_with_minutes_and_seconds_in_range(
    duration: SimpleDuration, field: tuple[str, ...]
) -> None:
    assert problems_of(time_allocation=duration) == [(UserErrorCode.INVALID_PARAMETER, field)]


def test_peer_hostnames_must_be_dns_labels_and_unique() -> None:
    found = problems_of(
        resources=(PeerValue("db", "1"), PeerValue("db", "2"), PeerValue("bad_name!", "3"))
    )
    assert found == [
        (UserErrorCode.INVALID_PARAMETER, ("resources", "1", "hostname")),
        (UserErrorCode.INVALID_PARAMETER, ("resources", "2", "hostname")),
    ]


def test_every_problem_of_every_item_is_reported_with_its_index() -> None:
    bad = dataclasses.replace(
        GOOD, replicas=0, name="no;", parameters=(("word", BooleanValue(True)),)
    )
    _, problems = validate_specifications([GOOD, bad], CATALOG)
    assert [(p.index, p.field) for p in problems] == [
        (1, ("name",)),
        (1, ("replicas",)),
        (1, ("parameters", "word")),
    ]


def test_a_text_that_would_be_read_as_an_option_is_refused_before_the_end_of_options() -> None:
    assert problems_of(parameters=(("word", TextValue("--output=/etc/passwd")),)) == [
        (UserErrorCode.INVALID_PARAMETER, ("parameters", "word"))
    ]
    after_the_end = dataclasses.replace(APP, command=("printf", "--", "{word}"))
    spec = dataclasses.replace(GOOD, parameters=(("word", TextValue("-n")),))
    _, problems = validate_specifications([spec], Catalog([after_the_end], [PRODUCT]))
    assert problems == []


def test_a_text_inside_an_argument_is_no_option() -> None:
    embedded = dataclasses.replace(APP, command=("printf", "word={word}"))
    spec = dataclasses.replace(GOOD, parameters=(("word", TextValue("-n")),))
    _, problems = validate_specifications([spec], Catalog([embedded], [PRODUCT]))
    assert problems == []


@pytest.mark.parametrize("text", ["a\0b", "x" * (64 * 1024 + 1)])
def test_a_text_with_nul_bytes_or_beyond_its_size_is_refused_at_submit(text: str) -> None:
    assert problems_of(parameters=(("word", TextValue(text)),)) == [
        (UserErrorCode.INVALID_PARAMETER, ("parameters", "word"))
    ]


def test_a_command_line_longer_than_the_system_runs_is_refused_at_submit() -> None:
    many = dataclasses.replace(
        APP, command=("printf", "{word}", "{word}", "{word}", "{word}", "{word}")
    )
    spec = dataclasses.replace(GOOD, parameters=(("word", TextValue("x" * 60_000)),))
    _, problems = validate_specifications([spec], Catalog([many], [PRODUCT]))
    assert [(p.code, p.field) for p in problems] == [
        (UserErrorCode.INVALID_PARAMETER, ("parameters",))
    ]


@pytest.mark.parametrize("path", ["../../../../jobgate.toml", "in\0put", ""])
def test_a_path_that_leaves_the_workspace_by_its_text_is_refused(path: str) -> None:
    with_file = dataclasses.replace(
        APP,
        command=("cat", "{file}"),
        parameters=(ApplicationParameter("file", ParameterType.INPUT_FILE),),
    )
    spec = dataclasses.replace(GOOD, parameters=(("file", FileValue(path)),))
    _, problems = validate_specifications([spec], Catalog([with_file], [PRODUCT]))
    assert [(p.code, p.field) for p in problems] == [
        (UserErrorCode.INVALID_PARAMETER, ("parameters", "file", "path"))
    ]
    mounted = dataclasses.replace(GOOD, resources=(FileValue(path),))
    _, problems = validate_specifications([mounted], CATALOG)
    assert [(p.code, p.field) for p in problems] == [
        (UserErrorCode.INVALID_PARAMETER, ("resources", "0", "path"))
    ]
