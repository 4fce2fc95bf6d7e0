"""Wire messages and the validated RunConfig: the only place untrusted JSON is parsed."""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from app.spec import Activation, Dataset, Device, Init, Norm, NormPosition, Optimizer, RunSpec

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
_DEFAULT = RunSpec()


class RunConfig(BaseModel):
    """A run's config as a client sends it; omitted fields take their defaults.

    RunConfig.model_validate({"depth": 10, "norm": "batch"}).to_spec()
    """

    model_config = ConfigDict(**_STRICT, title="RunConfig")

    dataset: Dataset = Field(_DEFAULT.dataset, description="2-D toy set (2 classes) or 8x8 digits")
    noise: float = Field(_DEFAULT.noise, ge=0, le=1, description="noise of the 2-D sets")
    depth: int = Field(_DEFAULT.depth, ge=1, le=24, description="hidden layers")
    width: int = Field(_DEFAULT.width, ge=2, le=512, description="units per hidden layer")
    activation: Activation = Field(_DEFAULT.activation, description="the nonlinearity")
    norm: Norm = Field(_DEFAULT.norm, description="normalization layer")
    groups: int = Field(_DEFAULT.groups, ge=1, le=64, description="group norm's groups; divides width")
    norm_position: NormPosition = Field(
        _DEFAULT.norm_position, description="before: Linear->Norm->Act; after: Linear->Act->Norm"
    )
    init: Init = Field(_DEFAULT.init, description="weight initialisation")
    init_std: float = Field(_DEFAULT.init_std, ge=1e-4, le=10, description="std of the normal init")
    optimizer: Optimizer = Field(_DEFAULT.optimizer, description="momentum is SGD with 0.9")
    lr: float = Field(_DEFAULT.lr, ge=1e-5, le=10, description="learning rate")
    batch_size: int = Field(_DEFAULT.batch_size, ge=1, le=1024, description="examples per step")
    steps: int = Field(_DEFAULT.steps, ge=1, le=100_000, description="training steps")
    seed: int = Field(_DEFAULT.seed, ge=0, le=2**31 - 1, description="data, order and init seed")
    device: Device = Field(_DEFAULT.device, description="auto takes a GPU when one is present")
    emit_every: int = Field(_DEFAULT.emit_every, ge=1, le=1000, description="steps between frames")
    bins: int = Field(_DEFAULT.bins, ge=8, le=256, description="histogram bins")
    eval_every: int = Field(
        _DEFAULT.eval_every, ge=1, le=100_000, description="steps between test-accuracy checks"
    )
    max_steps_per_s: int = Field(
        _DEFAULT.max_steps_per_s, ge=0, le=100_000, description="pace for watching; 0 = unlimited"
    )
    probe_gradients: bool = Field(
        _DEFAULT.probe_gradients, description="gradient histograms, gradient norms, update ratios"
    )
    drift_lag: int = Field(
        _DEFAULT.drift_lag, ge=1, le=100, description="drift compares with this many frames ago"
    )
    noisy_norm: bool = Field(_DEFAULT.noisy_norm, description="Santurkar et al.'s noise after each norm")
    ics_every: int = Field(
        _DEFAULT.ics_every, ge=0, le=100_000, description="steps between ICS measurements; 0 = off"
    )
    landscape_every: int = Field(
        _DEFAULT.landscape_every, ge=0, le=100_000, description="steps between landscape probes; 0 = off"
    )
    test_shift: float = Field(_DEFAULT.test_shift, ge=-10, le=10, description="added to the test inputs")
    test_scale: float = Field(_DEFAULT.test_scale, ge=0.01, le=100, description="multiplies the test inputs")
    eval_batch_size: int = Field(
        _DEFAULT.eval_batch_size, ge=0, le=4096, description="test batch size; 0 = the whole test set"
    )

    @field_validator("groups")
    @classmethod
    def _groups_divide_width(cls, groups: int, info: ValidationInfo) -> int:
        width, norm = info.data.get("width"), info.data.get("norm")
        if norm == "group" and width is not None and width % groups:
            raise ValueError(f"groups must divide width ({width} is not a multiple of {groups})")
        return groups

    def to_spec(self) -> RunSpec:
        return RunSpec(**self.model_dump())


assert {f.name for f in fields(RunSpec)} == set(RunConfig.model_fields), "RunConfig and RunSpec differ"


class StartMessage(BaseModel):
    model_config = _STRICT
    type: Literal["start"]
    config: dict[str, Any] = Field(default_factory=dict)
    compare: dict[str, Any] | None = Field(None, description="fields that differ for run B")


MAX_SWEEP_POINTS = 12


class SweepMessage(BaseModel):
    model_config = _STRICT
    type: Literal["sweep"]
    config: dict[str, Any] = Field(default_factory=dict)
    compare: dict[str, Any] | None = None
    lrs: list[Annotated[float, Field(ge=1e-5, le=10)]] = Field(min_length=1, max_length=MAX_SWEEP_POINTS)
    steps: int = Field(300, ge=10, le=5000, description="steps of each short run")


class PauseMessage(BaseModel):
    model_config = _STRICT
    type: Literal["pause"]


class ResumeMessage(BaseModel):
    model_config = _STRICT
    type: Literal["resume"]


class StepMessage(BaseModel):
    model_config = _STRICT
    type: Literal["step"]


class StopMessage(BaseModel):
    model_config = _STRICT
    type: Literal["stop"]


class SetMessage(BaseModel):
    model_config = _STRICT
    type: Literal["set"]
    lr: float = Field(ge=1e-5, le=10, description="the new learning rate")


ClientMessage = Annotated[
    StartMessage | SweepMessage | PauseMessage | ResumeMessage | StepMessage | StopMessage | SetMessage,
    Field(discriminator="type"),
]
_CLIENT_MESSAGE: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


class ProtocolError(Exception):
    """A client message we refuse, ready to send back as an `error` message."""

    def __init__(self, code: str, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.errors = code, message, errors or []

    def to_wire(self) -> dict[str, Any]:
        return {"type": "error", "code": self.code, "message": self.message, "errors": self.errors}


def parse_client_message(text: str | bytes) -> ClientMessage:
    """Parse one websocket message; raises ProtocolError naming what is wrong."""
    try:
        # orjson is strict JSON: it refuses NaN/Infinity literals, which Python's json accepts.
        raw = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("bad_json", f"the message is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("bad_json", "the message must be a JSON object with a 'type'")
    try:
        return _CLIENT_MESSAGE.validate_python(raw)
    except ValidationError as exc:
        errors = describe_errors(exc)
        raise ProtocolError("invalid_message", _summary(errors), errors) from None


def parse_run_config(config: dict[str, Any], prefix: str = "") -> RunConfig:
    """Validate a run config; error fields are named `prefix + field` ("compare.lr")."""
    try:
        return RunConfig.model_validate(config)
    except ValidationError as exc:
        errors = [{**e, "field": prefix + e["field"]} for e in describe_errors(exc)]
        raise ProtocolError("invalid_config", _summary(errors), errors) from None


LOCKSTEP_FIELDS = (
    "steps",
    "emit_every",
    "eval_every",
    "max_steps_per_s",
    "drift_lag",
    "ics_every",
    "landscape_every",
)


def parse_twin_configs(
    config: dict[str, Any], compare: dict[str, Any] | None
) -> tuple[RunConfig, RunConfig | None]:
    """Run A's config and, in compare mode, run B's: A's with the `compare` fields changed.

    Twins step in lockstep, so they must share the fields that set the cadence."""
    first = parse_run_config(config)
    if compare is None:
        return first, None
    locked = [name for name in LOCKSTEP_FIELDS if name in compare and compare[name] != getattr(first, name)]
    if locked:
        errors = [
            {
                "field": f"compare.{name}",
                "message": f"twin runs share {name}: it cannot differ in compare mode",
            }
            for name in locked
        ]
        raise ProtocolError("invalid_config", _summary(errors), errors)
    second = parse_run_config({**first.model_dump(), **compare}, prefix="compare.")
    return first, second


_TYPE_WORDS = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "an object",
    "model_type": "an object",
}
_LIMIT_WORDS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}


def describe_errors(exc: ValidationError) -> list[dict[str, str]]:
    """One {field, message} per problem, the message naming the field, its limit and the value."""
    out = []
    for err in exc.errors(include_url=False):
        loc = [str(part) for part in err["loc"]]
        # A tagged union puts the tag in the location ("start.config"): keep the field path only.
        if loc and loc[0] in _TAGS:
            loc = loc[1:]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = ["type"]
        field = ".".join(loc) or "config"
        out.append({"field": field, "message": _message(field, err)})
    return out


_TAGS = {"start", "sweep", "pause", "resume", "step", "stop", "set"}


def _message(field: str, err: Any) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    got = f" (got {_short(value)})"
    for key, word in _LIMIT_WORDS.items():
        if key in ctx:
            return f"{field} must be {word} {ctx[key]}{got}"
    if kind == "literal_error":
        return f"{field} must be one of {ctx.get('expected', '')}{got}"
    if kind == "extra_forbidden":
        return f"{field} is not a known field"
    if kind == "missing":
        return f"{field} is required"
    if kind in _TYPE_WORDS:
        return f"{field} must be {_TYPE_WORDS[kind]}{got}"
    if kind == "finite_number":
        return f"{field} must be a finite number{got}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = ctx.get("tag")
        return f"type must be one of {', '.join(sorted(_TAGS))}" + (f" (got {tag!r})" if tag else "")
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return f"{field}: {err['msg']}{got}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _summary(errors: list[dict[str, str]]) -> str:
    return "; ".join(e["message"] for e in errors[:5]) + (" ..." if len(errors) > 5 else "")


def config_schema() -> dict[str, Any]:
    return RunConfig.model_json_schema()
