import os

import torch

# Triton kernels run in its CPU interpreter where no GPU is present; the variable must be
# set before triton is first imported (torch._dynamo, pulled in by timm, imports it).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
