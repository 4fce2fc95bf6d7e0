"""Session: one websocket connection's state, its outbox and at most one run."""

from __future__ import annotations

from app.budget import RunCost
from app.config import Settings
from app.runner import Outbox, Run
from app.schemas import (
    ClientMessage,
    PauseMessage,
    ProtocolError,
    ResumeMessage,
    SetMessage,
    StartMessage,
    StepMessage,
    StopMessage,
    parse_run_config,
)
from app.spec import RunSpec


class Session:
    """Turns parsed client messages into actions on the session's run."""

    def __init__(self, outbox: Outbox, cuda_available: bool, settings: Settings) -> None:
        self.outbox = outbox
        self.cuda_available = cuda_available
        self.settings = settings
        self.run: Run | None = None

    def handle(self, message: ClientMessage) -> None:
        """Act on one message; raises ProtocolError for anything refused."""
        if isinstance(message, StartMessage):
            self.start(message)
            return
        run = self.run
        if run is None or not run.active:
            raise ProtocolError("no_run", f"'{message.type}' needs a run in progress; send 'start' first")
        if isinstance(message, PauseMessage):
            run.pause()
        elif isinstance(message, ResumeMessage):
            run.resume()
        elif isinstance(message, StepMessage):
            run.step_once()
        elif isinstance(message, StopMessage):
            run.stop()
        elif isinstance(message, SetMessage):
            run.set_lr(message.lr)

    def start(self, message: StartMessage) -> None:
        spec = parse_run_config(message.config).to_spec()
        if spec.device == "cuda" and not self.cuda_available:
            raise ProtocolError(
                "invalid_config",
                "device cuda is not available on this server",
                [{"field": "device", "message": "device must be auto or cpu here: torch sees no GPU"}],
            )
        check_budget(spec, self.settings)
        previous = self.run
        run_id = (previous.run_id + 1) if previous else 1
        # Silence the old run first, then say it stopped: no stale frame can follow 'started'.
        self.outbox.run_id = run_id
        if previous is not None and previous.active:
            previous.stop()
            self.outbox.put({"type": "state", "state": "stopped", "step": previous.step})
        self.run = Run(spec, self.outbox, run_id, max_seconds=self.settings.max_run_seconds)
        self.run.start()

    def close(self) -> None:
        """The connection is gone: stop the run (its thread ends within one training step)."""
        if self.run is not None:
            self.run.stop()


def check_budget(spec: RunSpec, settings: Settings) -> None:
    """Refuse a run whose size or total work is over the server's limits, naming the limit."""
    cost = RunCost.of(spec)
    errors = []
    if cost.parameters > settings.max_parameters:
        errors.append(
            {
                "field": "width",
                "message": f"this network has {cost.parameters:,} parameters; the limit is "
                f"{settings.max_parameters:,}: lower width or depth",
            }
        )
    if cost.activation_values > settings.max_activation_values:
        errors.append(
            {
                "field": "batch_size",
                "message": f"batch_size x width x depth is {cost.activation_values:,}; the limit is "
                f"{settings.max_activation_values:,}: lower batch_size, width or depth",
            }
        )
    if cost.train_flops > settings.max_train_flops:
        errors.append(
            {
                "field": "steps",
                "message": f"this run needs about {cost.train_flops:.2g} FLOPs; the limit is "
                f"{settings.max_train_flops:.2g}: lower steps, batch_size, width or depth",
            }
        )
    if errors:
        raise ProtocolError("over_budget", "; ".join(e["message"] for e in errors), errors)
