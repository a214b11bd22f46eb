"""``make run``'s command refuses a port it would share with its own simulator."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command


def test_serving_on_the_simulators_port_is_refused_with_a_way_out():
    with pytest.raises(CommandError, match=r"LLMSIM_PORT") as refused:
        call_command("run_embedded", port=settings.LLMSIM_PORT)
    assert "make run PORT=" in str(refused.value)
