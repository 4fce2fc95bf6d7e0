"""Settings: process-wide configuration from the environment (prefix SHIFTSCOPE_).

SHIFTSCOPE_PORT=9000 SHIFTSCOPE_HOST=0.0.0.0 make run
SHIFTSCOPE_ALLOWED_ORIGINS='["https://lab.example.org"]' SHIFTSCOPE_ACCESS_TOKEN=s3cret make run
"""

from __future__ import annotations

import os
import socket

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
MAX_AUTO_RUNS = 64  # runs at once when max_runs is 0 (capacity admits fewer for larger runs)


class Settings(BaseSettings):
    """Where the app listens, who may connect, and the limits it enforces."""

    model_config = SettingsConfigDict(env_prefix="SHIFTSCOPE_", extra="ignore")

    host: str = "127.0.0.1"  # loopback by default; the container opts in to 0.0.0.0
    port: int = 8000
    log_level: str = "info"

    # Who may connect. Browsers always send Origin: same-origin pages and these exact origins
    # may open the websocket; "null" and look-alikes may not. Clients without an Origin header
    # (scripts, not browsers) are allowed: they cannot ride a visitor's browser.
    allowed_origins: list[str] = Field(default_factory=list)
    # Host names the server answers to (DNS-rebinding defence). Empty: the loopback names when
    # bound to loopback; bound to another interface (a LAN, a container), the loopback names,
    # this machine's own names (hostname, FQDN, hostname.local) and any IP address, which a
    # rebinding page cannot send: its Host header carries the attacker's name.
    allowed_hosts: list[str] = Field(default_factory=list)
    access_token: str | None = None  # when set, the websocket needs ?token=... to connect
    # Wrong tokens allowed per client address before its handshakes are refused unchecked; the
    # allowance refills at `token_failures_per_minute` (guessing stays at a few tries a minute).
    token_failure_burst: int = 10
    token_failures_per_minute: float = 5.0

    # Hostile or careless clients.
    # Before a request reaches the app (app/serve.py, `python -m app`): a request's headers must
    # fit in max_header_bytes and arrive within header_timeout_s; past max_connections open
    # connections (HTTP and websocket) a new one is closed at once.
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    header_timeout_s: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=768, ge=1)
    # Websocket pings from a peer (each costs a pong), per connection; past them a policy close.
    max_pings_per_s: float = Field(default=5.0, gt=0)
    ping_burst: int = Field(default=20, ge=1)
    max_message_bytes: int = 64 * 1024  # larger messages get a policy close
    max_messages_per_s: float = 20.0  # sustained rate per connection; floods get a policy close
    message_burst: int = 40  # messages allowed at once before the rate applies
    # The same over all the connections of one client address (many sockets do not multiply it).
    max_messages_per_s_per_client: float = Field(default=50.0, gt=0)
    client_message_burst: int = Field(default=100, ge=1)
    idle_timeout_s: float = 1800.0  # a connection with no run and no message this long is closed
    max_run_seconds: float = 1800.0  # wall-clock limit of one run, pauses included (state timeout)
    # A client that takes no data for this long (its socket's buffers stay full) has stopped
    # reading: its session ends and its run slot is freed. Do not count on the server's ping
    # timeout for this: uvicorn's closes the transport, which waits for a flush that never comes.
    send_timeout_s: float = 20.0

    # Admission (app/workers.py): each run trains in its own worker process. A run is admitted
    # while every admitted run can still keep the floor: floor_frames_per_s frames and
    # floor_steps_per_s steps a second (each run's need is priced from its config,
    # app/budget.floor_load: the default preset needs ~0.075 of a core). The admitted runs share
    # the CPU fairly (the kernel's fair scheduler, workers at worker_niceness below the server)
    # and each goes as fast as its share allows. Past capacity, starts wait in line, told their
    # place; past max_queue, "busy".
    max_runs: int = Field(default=0, ge=0)  # runs at once; 0: capacity decides, up to MAX_AUTO_RUNS
    run_capacity: float = Field(default=0.0, ge=0)  # cores the runs share; 0: 85% of the cores
    floor_frames_per_s: float = Field(default=15.0, ge=0)
    floor_steps_per_s: float = Field(default=10.0, ge=0)
    spare_workers: int = Field(default=2, ge=0)  # idle workers kept warm for an instant start
    worker_niceness: int = Field(default=10, ge=0, le=19)  # workers' nice value; 0 = the server's
    max_queue: int = 8  # starts waiting for capacity; past this a start is told "busy"
    max_connections_per_client: int = 32  # per client address (a classroom may share one NAT)
    # Running plus waiting jobs per client address, over all its connections (0 = no cap): ten
    # sockets of one address took both slots and the whole line. A class behind one NAT address
    # shares this: raise it there (a room lets the class watch one run instead).
    max_jobs_per_client: int = Field(default=2, ge=0)
    max_sessions: int = 400  # open websocket connections in all
    # A worker's address space is capped (RLIMIT_AS) once it is warm: a run that needs more fails
    # with a clear out-of-memory error instead of taking the host's memory; 0 = no cap. Measured
    # peaks of address space: a warm worker 0.72 GB; the largest admitted jobs, a 24 x 512 MLP
    # twin at batch 1024 1.15 GB and a 10-block d_model-256 transformer twin 2.17 GB.
    worker_memory_bytes: int = Field(default=4 * 2**30, ge=0)
    # After each job a worker hands its free memory back; one still holding more than this is
    # replaced by a fresh one (0 = never).
    worker_recycle_bytes: int = Field(default=1 * 2**30, ge=0)

    # Rooms (app/rooms.py): a teacher's run shown to a class.
    max_rooms: int = Field(default=20, ge=0)  # open rooms on this server; 0 = rooms off
    max_rooms_per_client: int = Field(default=2, ge=1)  # rooms one address may lead
    max_viewers_per_room: int = Field(default=300, ge=1)
    room_history_frames: int = Field(default=240, ge=2)  # frames a late joiner gets (downsampled)
    room_grace_s: float = Field(default=60.0, ge=0)  # a teacher who drops gets this long to return
    room_idle_s: float = Field(default=3 * 3600.0, gt=0)  # a room with no run, join or change
    # Wrong room codes and keys per address before its joins are refused unchecked; the
    # allowance refills at this rate (27^6 codes: guessing one of 20 rooms takes ~10^7 tries).
    room_join_failure_burst: int = Field(default=10, ge=1)
    room_join_failures_per_minute: float = Field(default=10.0, gt=0)
    # A recording a teacher opens in a room (POST /api/rooms/{code}/recording, app/room_recordings.py):
    # held in memory with the room, one per room, gone when it ends; larger bodies get 413; 0 = off.
    room_recording_max_bytes: int = Field(default=24 * 2**20, ge=0)
    # Rooms across replicas (app/relay.py): unset, rooms live in this process. Set (e.g.
    # redis://redis:6379/0), every replica behind the proxy shares its rooms through Redis: a
    # viewer may join on any replica; a teacher must reach the replica that owns their room
    # (sticky routing by cookie at the proxy, docs/deploy.md).
    redis_url: str | None = None
    # An owner's rooms vanish from Redis this long after its last heartbeat (every third of it):
    # viewers on other replicas of a lost replica's room are told within about this plus a beat.
    room_ttl_s: float = Field(default=3.0, ge=1.0, le=60.0)
    replica_name: str = ""  # this replica's name in Redis; "" = host-pid-random

    # A class experiment's summary (every student's point) goes out at most this often, and
    # only when something changed: the floor of 0.2 s keeps it at ≤ 5 Hz whatever the class size.
    experiment_summary_every_s: float = Field(default=0.2, ge=0.2)

    # Your own data (POST /api/dataset, app/datasets/upload.py): one CSV per session, held in the
    # session's memory only (never on disk) and dropped when its websocket closes.
    upload_max_bytes: int = Field(default=5 * 2**20, ge=1024)  # read no further: 413 past it
    upload_max_rows: int = Field(default=20_000, ge=10)  # data rows, the header not counted
    upload_max_features: int = Field(default=256, ge=1)
    upload_max_classes: int = Field(default=50, ge=2)
    upload_min_rows_per_class: int = Field(default=5, ge=1)  # so a class can be in train and test
    # All sessions' tables together (standardised float32: 20,000 x 256 is ~20 MB); past it an
    # upload is refused (503) until some are dropped. Uploads parse at most this many at once.
    upload_max_total_bytes: int = Field(default=512 * 2**20, ge=0)
    upload_parsers: int = Field(default=1, ge=1)

    # A run's cost, checked before anything is allocated.
    max_parameters: int = 8_000_000  # 24 x 512 hidden layers is ~6.3 M
    max_activation_values: int = 16_000_000  # batch x width x depth held for the backward pass
    max_train_flops: float = 5e13  # ~6 x parameters x batch x steps; ~30 min of one core

    def run_slots(self) -> int:
        """The most runs at once: max_runs, or by memory (a worker's PSS is ~0.1-0.3 GB; half
        the machine's memory at 256 MiB each), at most MAX_AUTO_RUNS."""
        if self.max_runs > 0:
            return self.max_runs
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            memory = 8 * 2**30
        return max(1, min(MAX_AUTO_RUNS, memory // 2 // (256 * 2**20)))

    def run_cores(self) -> float:
        """The CPU (in cores) the admitted runs share; the rest stays with the server."""
        return self.run_capacity if self.run_capacity > 0 else 0.85 * (os.cpu_count() or 1)

    def trusted_hosts(self) -> list[str]:
        """The Host names answered (besides IP addresses, where `ip_hosts_allowed`)."""
        if self.allowed_hosts:
            return self.allowed_hosts
        if self.host in LOOPBACK_HOSTS:
            return list(LOOPBACK_HOSTS)
        return list(LOOPBACK_HOSTS) + own_names()

    def ip_hosts_allowed(self) -> bool:
        """Whether a Host header that is an IP address is answered: off loopback, by default."""
        return not self.allowed_hosts and self.host not in LOOPBACK_HOSTS


def own_names() -> list[str]:
    """This machine's names, as a browser on the LAN may reach it: hostname, FQDN, mDNS name."""
    names = {socket.gethostname(), socket.getfqdn()}
    names |= {f"{name.split('.')[0]}.local" for name in list(names) if name}
    return sorted(name.lower() for name in names if name)
