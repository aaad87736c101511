import pytest
import torch

# The fast tier (`pytest -m "not slow"`, for everyday work) leaves out what runs the workflow for
# real or starts several processes: these modules, the tiny real run of test_workflow, and the
# tests marked @pytest.mark.slow in place. CI runs everything.
SLOW_MODULES = {"test_workflow_resume", "test_shrec17_workflow", "test_lba_workflow", "test_proteinnet_workflow",
                "test_pretrained_workflow", "test_slurm", "test_distributed"}
SLOW_FIXTURES = {"tiny_run"}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.module.__name__.split(".")[-1] in SLOW_MODULES or SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
