"""Shared fixtures. Tests that need the real data in ``../shared`` skip with a reason when it is absent."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HF_NOISY_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.skip(f"real test data not found at {SHARED}/data (set HF_NOISY_SHARED to the shared folder)")
    return SHARED


@pytest.fixture(scope="session")
def coco_tiny(shared_dir: Path) -> Path:
    """``coco-tiny`` root: ``annotations/instances_{train,val}2017.json`` and the image folders."""
    return shared_dir / "data" / "coco-tiny"


def pytest_configure(config) -> None:
    """Keep datasets/evaluate caches out of the user's home and never touch the network.

    Set before collection, because ``datasets`` and ``evaluate`` read their cache paths once, at import: a
    per-test environment variable would come too late, and a shared ``~/.cache/huggingface`` can serve a stale
    cached dataset for a folder path that another run used before.
    """
    home = tempfile.mkdtemp(prefix="hf-noisy-tests-hf-home-")
    config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))
    os.environ["HF_HOME"] = home
    os.environ.pop("HF_DATASETS_CACHE", None)
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    _bind_loopback_hub(config)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def free_port():
    """A function returning a free TCP port on 127.0.0.1 (a server or an accelerate rendezvous of the test's own)."""
    return _free_port


@pytest.fixture
def two_cpu_processes():
    """A function returning the command prefix that starts two real CPU processes with accelerate: ``--multi_gpu``
    with the script choosing ``cpu=True`` (``--cpu --num_processes 2`` would start one; see STACK-NOTES), and a
    rendezvous port of its own (the default 29500 could meet another job's ranks)."""
    import sys

    def prefix() -> list[str]:
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", str(_free_port())]

    return prefix


# -- the loopback Hub (tests/hub_server.py) ------------------------------------------------------------------------
#
# Every test process points huggingface_hub, datasets and evaluate at a Hub on 127.0.0.1 (HF_ENDPOINT, read by all
# three once, at import: hence here, before collection imports them), so nothing can reach huggingface.co. Offline
# mode stays on by default: a test that reaches for the Hub without asking for the ``hub`` fixture fails at once.
# The ``hub`` fixture turns it off for its test (and that test's subprocesses) and serves the repos from memory.

_HUB_KEY = pytest.StashKey()
HUB_USER, HUB_ORG = "alice", "noisy-seg"
HUB_TOKEN, HUB_OTHER_TOKEN = "hf_loopback_alice_token", "hf_loopback_bob_token"


def _bind_loopback_hub(config) -> None:
    import sys

    from hub_server import HubServer

    if "huggingface_hub" in sys.modules:
        raise pytest.UsageError("huggingface_hub was imported before tests/conftest.py could set HF_ENDPOINT")
    server = HubServer()
    server.add_user(HUB_USER, HUB_TOKEN, orgs=(HUB_ORG,))
    server.add_user("bob", HUB_OTHER_TOKEN)
    config.stash[_HUB_KEY] = server
    config.add_cleanup(server.stop)
    os.environ["HF_ENDPOINT"] = server.endpoint
    os.environ["HF_HUB_DISABLE_XET"] = "1"  # LFS over plain HTTP: the protocol the loopback server speaks
    os.environ["HF_UPDATE_DOWNLOAD_COUNTS"] = "0"  # datasets and evaluate would HEAD an S3 bucket on each load
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # gradio reports launches to huggingface.co otherwise
    os.environ.pop("HF_TOKEN", None)  # a developer's own token is never sent, not even to the loopback


@pytest.fixture(scope="session")
def hub_server(pytestconfig):
    """The loopback Hub, serving from the first test that needs it to the end of the session."""
    return pytestconfig.stash[_HUB_KEY].start()


class LoopbackHub:
    """What a Hub test needs: the server (``state`` holds its repos), its endpoint, the user ``alice`` (token
    ``token``, member of the organisation ``org``) and a second user's token (``other_token``, user ``bob``)."""

    user, org, token, other_token = HUB_USER, HUB_ORG, HUB_TOKEN, HUB_OTHER_TOKEN

    def __init__(self, server) -> None:
        self.server = server
        self.state = server.state
        self.endpoint = server.endpoint


def _refuse_remote_hosts(request) -> None:
    if request.url.host != "127.0.0.1":
        raise ConnectionRefusedError(f"tests reach the loopback Hub only, not {request.url.host}")


@pytest.fixture
def hub(hub_server, monkeypatch):
    """The loopback Hub, empty, online for this test and its subprocesses, with ``HF_TOKEN`` set to alice's.

    Offline mode is turned off for this test only (huggingface_hub's, datasets' and evaluate's flags, read at
    call time, and the environment for subprocesses); huggingface_hub's HTTP client refuses any host but 127.0.0.1.
    """
    import datasets.config
    import huggingface_hub.constants
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils._http import default_client_factory

    def loopback_only_client():
        client = default_client_factory()
        client.event_hooks = {**client.event_hooks, "request": [*client.event_hooks["request"], _refuse_remote_hosts]}
        return client

    hub_server.reset()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(name, "0")
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    set_client_factory(loopback_only_client)
    yield LoopbackHub(hub_server)
    set_client_factory(default_client_factory)
