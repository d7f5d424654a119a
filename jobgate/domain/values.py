"""Small value types of the Job model: durations, references and parameter values."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class SimpleDuration:
    """A wall-time duration. Valid ones have minutes and seconds in 0..59 and no negative part."""

    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    @property
    def total_ms(self) -> int:
        return (self.hours * 3600 + self.minutes * 60 + self.seconds) * 1000

    @property
    def total_seconds(self) -> int:
        return self.hours * 3600 + self.minutes * 60 + self.seconds

    @classmethod
    def from_seconds(cls, seconds: int) -> SimpleDuration:
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        return cls(hours, minutes, secs)

    def problems(self, name: str) -> list[tuple[tuple[str, ...], str]]:
        """Every rule this duration, given as field `name`, breaks: (field path under `name`,
        message) pairs. The one home of "a duration is valid and above zero", which time
        allocations, extensions and providers' new allocations all follow."""
        found: list[tuple[tuple[str, ...], str]] = []
        if self.hours < 0:
            found.append((("hours",), f"{name}.hours must not be negative"))
        if not 0 <= self.minutes <= 59:
            found.append((("minutes",), f"{name}.minutes must be between 0 and 59"))
        if not 0 <= self.seconds <= 59:
            found.append((("seconds",), f"{name}.seconds must be between 0 and 59"))
        if not found and self.total_ms <= 0:
            found.append(((), f"{name} must be above zero"))
        if not found and self.total_seconds > MAX_DURATION.total_seconds:
            found.append(((), f"{name} may be at most {MAX_DURATION.hours} hours"))
        return found

    def __add__(self, other: SimpleDuration) -> SimpleDuration:
        return SimpleDuration.from_seconds(self.total_seconds + other.total_seconds)


# The longest time allocation (and extension): a year. Longer ones are mistakes or attacks, and
# past it deadlines stop being dates (`hours = 2147483647` made every `expiresAt` fail).
MAX_DURATION = SimpleDuration(hours=24 * 365)


@dataclass(frozen=True, slots=True)
class NameAndVersion:
    name: str
    version: str


@dataclass(frozen=True, slots=True)
class ProductReference:
    """Names a product: `id` is unique within its category at its provider."""

    id: str
    category: str
    provider: str


@dataclass(frozen=True, slots=True)
class ResourceOwner:
    created_by: str
    project: str | None


# --- parameter values (UCloud's AppParameterValue, tagged by `type` on the wire) -----------


@dataclass(frozen=True, slots=True)
class FileValue:
    tag: ClassVar[str] = "file"
    path: str
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class BooleanValue:
    tag: ClassVar[str] = "boolean"
    value: bool


@dataclass(frozen=True, slots=True)
class TextValue:
    tag: ClassVar[str] = "text"
    value: str


@dataclass(frozen=True, slots=True)
class IntegerValue:
    tag: ClassVar[str] = "integer"
    value: int


@dataclass(frozen=True, slots=True)
class FloatingPointValue:
    tag: ClassVar[str] = "floating_point"
    value: float


@dataclass(frozen=True, slots=True)
class PeerValue:
    tag: ClassVar[str] = "peer"
    hostname: str
    job_id: str


@dataclass(frozen=True, slots=True)
class LicenseServerValue:
    tag: ClassVar[str] = "license_server"
    id: str


@dataclass(frozen=True, slots=True)
class BlockStorageValue:
    tag: ClassVar[str] = "block_storage"
    id: str


@dataclass(frozen=True, slots=True)
class NetworkValue:
    tag: ClassVar[str] = "network"
    id: str


@dataclass(frozen=True, slots=True)
class IngressValue:
    tag: ClassVar[str] = "ingress"
    id: str


@dataclass(frozen=True, slots=True)
class ModulesValue:
    tag: ClassVar[str] = "modules"
    modules: tuple[str, ...]


ParameterValue = (
    FileValue
    | BooleanValue
    | TextValue
    | IntegerValue
    | FloatingPointValue
    | PeerValue
    | LicenseServerValue
    | BlockStorageValue
    | NetworkValue
    | IngressValue
    | ModulesValue
)

_VALUE_TYPES: dict[str, type[ParameterValue]] = {
    cls.tag: cls
    for cls in (
        FileValue,
        BooleanValue,
        TextValue,
        IntegerValue,
        FloatingPointValue,
        PeerValue,
        LicenseServerValue,
        BlockStorageValue,
        NetworkValue,
        IngressValue,
        ModulesValue,
    )
}


def value_to_wire(value: ParameterValue) -> dict[str, Any]:
    """UCloud's wire form: the fields plus a `type` discriminator."""
    fields: dict[str, Any] = {"type": value.tag}
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        fields[field.name] = list(item) if isinstance(item, tuple) else item
    return fields


def value_from_wire(data: dict[str, Any]) -> ParameterValue:
    """The inverse of `value_to_wire`."""
    fields = dict(data)
    cls = _VALUE_TYPES[fields.pop("type")]
    if cls is ModulesValue:
        return ModulesValue(tuple(fields["modules"]))
    return cls(**fields)
