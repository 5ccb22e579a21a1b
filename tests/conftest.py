import os

import torch

# Triton kernels run in its CPU interpreter where no GPU is present; the variable must be
# set before triton is first imported (torch._dynamo, pulled in by timm, imports it).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import aioice.ice
import pytest


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    # aioice excludes 127.0.0.1 from host candidates; test peers all live in this process, so patching here
    # makes exactly them gather loopback and nothing else (no other interface, no STUN).
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
