"""Wire messages and the validated RunConfig: the only place untrusted JSON is parsed."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass, fields
from dataclasses import field as dc_field
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
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.spec import Activation, Arch, Dataset, Device, Init, Norm, NormPosition, Optimizer, RunSpec, Task

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
MAX_ERRORS = 10  # problems listed in one error reply
MAX_NESTING = 8  # a valid message nests 3 deep (message, config, a sweep's lrs); 8 leaves room
_DEFAULT = RunSpec()


class RunConfig(BaseModel):
    """A run's config as a client sends it; omitted fields take their defaults.

    RunConfig.model_validate({"depth": 10, "norm": "batch"}).to_spec()
    """

    model_config = ConfigDict(**_STRICT, title="RunConfig")

    arch: Arch = Field(
        _DEFAULT.arch, description="mlp, residual mlp, tiny causal transformer, or a conv net on digits"
    )
    dataset: Dataset = Field(
        _DEFAULT.dataset,
        description="2-D toy set (2 classes), 8x8 digits, or upload: the CSV this session uploaded",
    )
    noise: float = Field(_DEFAULT.noise, ge=0, le=1, description="noise of the 2-D sets")
    depth: int = Field(_DEFAULT.depth, ge=1, le=24, description="hidden layers")
    width: int = Field(_DEFAULT.width, ge=2, le=512, description="units per hidden layer")
    activation: Activation = Field(_DEFAULT.activation, description="the nonlinearity")
    norm: Norm = Field(_DEFAULT.norm, description="normalization layer")
    groups: int = Field(_DEFAULT.groups, ge=1, le=64, description="group norm's groups; divides width")
    norm_position: NormPosition = Field(
        _DEFAULT.norm_position,
        description="mlp/cnn: before (Linear->Norm->Act) or after; resmlp/transformer: pre or post "
        "(default pre)",
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
        _DEFAULT.drift_lag, ge=0, le=100, description="drift compares with this many frames ago; 0 = off"
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
    warmup_steps: int = Field(
        _DEFAULT.warmup_steps, ge=0, le=100_000, description="linear learning-rate warmup; 0 = none"
    )
    task: Task = Field(_DEFAULT.task, description="transformer: copy, reverse or sort the input")
    seq_len: int = Field(_DEFAULT.seq_len, ge=2, le=32, description="transformer: input tokens")
    vocab: int = Field(_DEFAULT.vocab, ge=2, le=64, description="transformer: distinct symbols")
    d_model: int = Field(_DEFAULT.d_model, ge=8, le=256, description="transformer: residual width")
    heads: int = Field(_DEFAULT.heads, ge=1, le=16, description="transformer: heads; divides d_model")

    @field_validator("groups")
    @classmethod
    def _groups_divide_width(cls, groups: int, info: ValidationInfo) -> int:
        width, norm = info.data.get("width"), info.data.get("norm")
        if norm == "group" and width is not None and width % groups:
            raise ValueError(f"groups must divide width ({width} is not a multiple of {groups})")
        return groups

    @model_validator(mode="after")
    def _fits_the_architecture(self) -> RunConfig:
        """Fields that only some architectures take: each refusal names the fields involved."""
        unset = set(type(self).model_fields) - self.model_fields_set
        rules = ARCHS[self.arch]
        for name, value in [*rules.defaults.items(), *((n, v) for n, (v, _) in rules.fixed.items())]:
            if name in unset:
                setattr(self, name, value)
        problems = [(field, message) for field, message in _arch_problems(self)]
        if problems:
            raise ValidationError.from_exception_data(
                "RunConfig",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("arch_mismatch", message),
                        loc=(field,),
                        input=getattr(self, field),
                    )
                    for field, message in problems
                ],
            )
        return self

    def to_spec(self) -> RunSpec:
        return RunSpec(**self.model_dump())


TRANSFORMER_FIELDS = ("task", "seq_len", "vocab", "d_model", "heads")


@dataclass(frozen=True)
class ArchRules:
    """What one architecture takes: the single source for the validation below, the schema's
    `x-arch-*` hints and so the page's form (static/js/arch.js reads them, it restates none)."""

    norms: tuple[Norm, ...]
    placements: tuple[NormPosition, NormPosition]  # early, late
    max_depth: int  # every architecture probes at most 24 tensors
    # Fields whose default depends on the architecture (a field the client sent is never changed).
    defaults: dict[str, Any] = dc_field(default_factory=dict)
    # Fields the architecture does not read: refused when sent, rather than silently ignored.
    unread: tuple[str, ...] = ()
    # Values the architecture requires, and why: filled in when left out, refused when different.
    fixed: dict[str, tuple[Any, str]] = dc_field(default_factory=dict)
    # Values a fixed field may also take (the CNN reads an uploaded table of 8x8 images too;
    # the session checks the table's shape, which no config can know).
    also: dict[str, tuple[Any, ...]] = dc_field(default_factory=dict)
    max_width: int | None = None


ARCHS: dict[Arch, ArchRules] = {
    "mlp": ArchRules(
        norms=("none", "batch", "layer", "group", "rms"),
        placements=("before", "after"),
        max_depth=24,
        defaults={"norm_position": "before"},
        unread=TRANSFORMER_FIELDS,
    ),
    "resmlp": ArchRules(
        norms=("none", "batch", "layer", "group", "rms"),
        placements=("pre", "post"),
        max_depth=12,
        defaults={"norm_position": "pre"},
        unread=TRANSFORMER_FIELDS,
    ),
    "transformer": ArchRules(
        norms=("none", "layer", "rms"),  # token-level norms only: no batch coupling
        placements=("pre", "post"),
        max_depth=12,
        defaults={"norm_position": "pre", "activation": "gelu", "optimizer": "adam", "lr": 3e-3},
        # It reads a token task (not a dataset), is d_model wide, has no group norm, always
        # starts from its own Xavier init (app/nets/transformer.py) and moves no real inputs.
        unread=(
            "dataset",
            "noise",
            "width",
            "groups",
            "init",
            "init_std",
            "noisy_norm",
            "test_shift",
            "test_scale",
        ),
    ),
    "cnn": ArchRules(
        norms=("none", "batch", "group", "layer"),
        placements=("before", "after"),
        max_depth=6,
        defaults={"depth": 3, "width": 16, "activation": "relu", "norm_position": "before"},
        unread=("noise", *TRANSFORMER_FIELDS),
        fixed={
            "dataset": ("digits", "arch=cnn trains on 8x8 images (the digits, or an upload of 64 features)")
        },
        also={"dataset": ("upload",)},
        max_width=64,  # channels
    ),
}
# Hints beside a refusal of a field the architecture does not read.
_UNREAD_HINTS = {
    ("transformer", "width"): "d_model sets its width",
    ("transformer", "dataset"): "task sets its data",
    ("transformer", "init"): "it starts from its own Xavier init",
    ("transformer", "test_shift"): "it reads tokens",
    ("transformer", "test_scale"): "it reads tokens",
    ("transformer", "noisy_norm"): "noisy norm is offered for mlp, resmlp and cnn",
}


def _arch_problems(config: RunConfig) -> list[tuple[str, str]]:
    arch, rules, out = config.arch, ARCHS[config.arch], []
    for name in rules.unread:
        if name in config.model_fields_set:
            hint = _UNREAD_HINTS.get((arch, name))
            out.append(
                (
                    name,
                    f"arch={arch} does not read {name}" + (f" ({hint})" if hint else "") + ": leave it out",
                )
            )
    for name, (value, reason) in rules.fixed.items():
        also = rules.also.get(name, ())
        if getattr(config, name) != value and getattr(config, name) not in also:
            allowed = " or ".join(str(v) for v in (value, *also))
            out.append((name, f"{reason}: {name} must be {allowed} (got {getattr(config, name)!r})"))
    if config.norm_position not in rules.placements:
        out.append(
            (
                "norm_position",
                f"norm_position must be {' or '.join(rules.placements)} for arch={arch} "
                f"(got {config.norm_position!r})",
            )
        )
    if config.norm not in rules.norms:
        out.append(
            (
                "norm",
                f"norm must be one of {', '.join(rules.norms)} for arch={arch} (got {config.norm!r})",
            )
        )
    if config.depth > rules.max_depth:
        out.append(("depth", f"depth must be ≤ {rules.max_depth} for arch={arch} (got {config.depth})"))
    if rules.max_width is not None and config.width > rules.max_width:
        out.append(
            ("width", f"width (channels) must be ≤ {rules.max_width} for arch={arch} (got {config.width})")
        )
    if "heads" not in rules.unread and config.d_model % config.heads:
        out.append(
            ("heads", f"heads must divide d_model ({config.d_model} is not a multiple of {config.heads})")
        )
    return out


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


# Rooms (app/rooms.py): a teacher opens one and leads it; viewers join it by its code.
RoomCode = Annotated[str, Field(min_length=1, max_length=16, description="the room's code, e.g. K7P3QX")]


class RoomOpenMessage(BaseModel):
    model_config = _STRICT
    type: Literal["room_open"]


class RoomRejoinMessage(BaseModel):
    model_config = _STRICT
    type: Literal["room_rejoin"]
    code: RoomCode
    key: str = Field(min_length=1, max_length=64, description="the teacher's control key")


class RoomStateMessage(BaseModel):
    model_config = _STRICT
    type: Literal["room_state"]
    state: dict[str, Any] = Field(description="the teacher's page state (PageState), shown to viewers")


class RoomLockMessage(BaseModel):
    model_config = _STRICT
    type: Literal["room_lock"]
    locked: bool


class RoomCloseMessage(BaseModel):
    model_config = _STRICT
    type: Literal["room_close"]


class JoinMessage(BaseModel):
    model_config = _STRICT
    type: Literal["join"]
    code: RoomCode


class LeaveMessage(BaseModel):
    model_config = _STRICT
    type: Literal["leave"]


RoomMessage = (
    RoomOpenMessage
    | RoomRejoinMessage
    | RoomStateMessage
    | RoomLockMessage
    | RoomCloseMessage
    | JoinMessage
    | LeaveMessage
)
# A class experiment (app/experiments.py): in a room, the teacher varies one field of a base
# config; each student who joins trains one of its values as their own run.
ExperimentField = Literal["lr", "norm", "batch_size", "depth", "init", "activation"]
EXPERIMENT_FIELDS: tuple[str, ...] = ExperimentField.__args__  # type: ignore[attr-defined]
MIN_EXPERIMENT_VALUES, MAX_EXPERIMENT_VALUES = 2, 12


class ExperimentOpenMessage(BaseModel):
    model_config = _STRICT
    type: Literal["experiment_open"]
    field: ExperimentField = Field(description="the config field the class varies")
    # Each value is checked as a whole config (the base with this field set) when the
    # experiment opens: app/experiments.py names the value and the limit it breaks.
    values: list[Annotated[str, Field(max_length=32)] | int | float] = Field(
        min_length=MIN_EXPERIMENT_VALUES, max_length=MAX_EXPERIMENT_VALUES
    )
    config: dict[str, Any] = Field(default_factory=dict, description="the base config (the teacher's)")
    assign: Literal["round_robin", "choice"] = Field(
        "round_robin", description="the server hands out values in turn, or each student picks one"
    )


class ExperimentJoinMessage(BaseModel):
    model_config = _STRICT
    type: Literal["experiment_join"]
    index: int | None = Field(None, ge=0, lt=MAX_EXPERIMENT_VALUES, description="the value picked (choice)")


class ExperimentStopAllMessage(BaseModel):
    model_config = _STRICT
    type: Literal["experiment_stop_all"]


class ExperimentRevealMessage(BaseModel):
    model_config = _STRICT
    type: Literal["experiment_reveal"]


class ExperimentCloseMessage(BaseModel):
    model_config = _STRICT
    type: Literal["experiment_close"]


ExperimentMessage = (
    ExperimentOpenMessage
    | ExperimentJoinMessage
    | ExperimentStopAllMessage
    | ExperimentRevealMessage
    | ExperimentCloseMessage
)
RunMessage = (
    StartMessage | SweepMessage | PauseMessage | ResumeMessage | StepMessage | StopMessage | SetMessage
)


class SeenMessage(BaseModel):
    """Flow control (optional): how many `frame` messages this connection has received so far.
    A client that sends it gets at most FLOW_WINDOW frames ahead of what it has seen; the
    newest frame waits for it, and older unsent ones are dropped, as for a stalled client."""

    model_config = _STRICT
    type: Literal["seen"]
    frames: int = Field(ge=0, le=2**53)


ClientMessage = Annotated[
    RunMessage | RoomMessage | ExperimentMessage | SeenMessage, Field(discriminator="type")
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
    if _depth(raw) > MAX_NESTING:
        raise ProtocolError("bad_json", f"the message nests deeper than {MAX_NESTING} levels")
    try:
        return _CLIENT_MESSAGE.validate_python(raw)
    except ValidationError as exc:
        errors = describe_errors(exc)
        raise ProtocolError("invalid_message", _summary(errors), errors) from None


def parse_run_config(config: dict[str, Any], prefix: str = "") -> RunConfig:
    """Validate a run config; error fields are named `prefix + field` ("compare.lr").

    A config with more keys than RunConfig has fields is refused before validation: thousands of
    unknown keys would otherwise cost as many errors to build and to send."""
    if len(config) > len(RunConfig.model_fields):
        unknown = [str(key)[:40] for key in config if key not in RunConfig.model_fields]
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        message = (
            f"{prefix.rstrip('.') or 'config'} has {len(config)} keys; a config has at most "
            f"{len(RunConfig.model_fields)} fields (unknown: {shown})"
        )
        errors = [{"field": prefix.rstrip(".") or "config", "message": message}]
        raise ProtocolError("invalid_config", message, errors)
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
    # B starts from what A's client sent. When B is another architecture, the fields whose
    # default depends on the architecture take B's defaults, and those B does not read or
    # requires are left to B's rules, unless `compare` names them.
    base = first.model_dump(exclude_unset=True)
    other_arch = compare.get("arch", first.arch)
    if other_arch != first.arch and other_arch in ARCHS:
        a, b = ARCHS[first.arch], ARCHS[other_arch]
        for name in {*a.defaults, *b.defaults, *b.unread, *b.fixed}:
            base.pop(name, None)
    second = parse_run_config({**base, **compare}, prefix="compare.")
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
        if loc and loc[0] in _TAGS | _EXPERIMENT_TAGS:
            loc = loc[1:]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = ["type"]
        field = ".".join(loc) or "config"
        out.append({"field": field, "message": _message(field, err)})
    if len(out) > MAX_ERRORS:  # the reply stays small, however many problems the input has
        more = len(out) - MAX_ERRORS
        out = [*out[:MAX_ERRORS], {"field": "config", "message": f"... and {more} more problems"}]
    return out


_TAGS = {"start", "sweep", "pause", "resume", "step", "stop", "set"}
# Experiment messages' errors name their own fields ("values.2"), not "experiment_open.values.2".
_EXPERIMENT_TAGS = {"experiment_open", "experiment_join"}


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
    if kind == "arch_mismatch":
        return str(err["msg"])
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return f"{field}: {err['msg']}{got}"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 30, 30


def _short(value: Any) -> str:
    """A value as an error quotes it: short, and bounded however deep or long the value is."""
    text = _REPR.repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _depth(value: Any) -> int:
    """How deep objects and arrays nest in a parsed message (iterative: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_NESTING:  # past the limit the answer is known
                stack.extend(
                    (child, level + 1) for child in (item.values() if isinstance(item, dict) else item)
                )
    return deepest


def _summary(errors: list[dict[str, str]]) -> str:
    return "; ".join(e["message"] for e in errors[:5]) + (" ..." if len(errors) > 5 else "")


def config_schema() -> dict[str, Any]:
    """The RunConfig JSON schema, plus what each architecture takes (the page follows it)."""
    schema = RunConfig.model_json_schema()
    schema["x-arch-defaults"] = {arch: rules.defaults for arch, rules in ARCHS.items()}
    schema["x-arch-norms"] = {arch: list(rules.norms) for arch, rules in ARCHS.items()}
    schema["x-arch-placements"] = {arch: list(rules.placements) for arch, rules in ARCHS.items()}
    schema["x-arch-max-depth"] = {arch: rules.max_depth for arch, rules in ARCHS.items()}
    schema["x-arch-max-width"] = {
        arch: rules.max_width for arch, rules in ARCHS.items() if rules.max_width is not None
    }
    # Fields an architecture does not read (refused when sent) and values it requires.
    schema["x-arch-unread"] = {arch: list(rules.unread) for arch, rules in ARCHS.items()}
    schema["x-arch-fixed"] = {
        arch: {name: value for name, (value, _) in rules.fixed.items()} for arch, rules in ARCHS.items()
    }
    schema["x-arch-also"] = {
        arch: {n: list(v) for n, v in rules.also.items()} for arch, rules in ARCHS.items()
    }
    return schema
