"""The LIF neuron of the HRMAS paper eqs 1-4, checked by hand, and its parameter validation."""

from __future__ import annotations

import math

import pytest
import torch

from snn_motifs import LIFState, NeuronParameters, lif_step
from snn_motifs.neuron import zero_state
from snn_motifs.surrogate import ATan


def test_lif_step_matches_equations_by_hand():
    tau, tau_s, r, vth = 4.0, 2.0, 2.0, 1.0
    leak, tinv = torch.tensor([1 - 1 / tau]), torch.tensor([1 / tau])
    state = zero_state(1, 1)
    currents = [1.0, 0.0, 2.0, 0.0, 0.5]
    spikes, mems, pscs = [], [], []
    for c in currents:
        s, state = lif_step(
            torch.tensor([[c]]), state, leak, tinv, torch.tensor([r]), vth, 1 - 1 / tau_s, ATan()
        )
        spikes.append(float(s)), mems.append(float(state.v)), pscs.append(float(state.a))
    # by hand: I[t] = 0.5 I[t-1] + R c[t]; u = 0.75 u + 0.25 I; reset to 0 above 1
    i_syn, u, a, expect = 0.0, 0.0, 0.0, []
    for c in currents:
        i_syn = 0.5 * i_syn + r * c
        u = 0.75 * u + 0.25 * i_syn
        s = 1.0 if u > vth else 0.0
        u = 0.0 if s else u
        a = 0.5 * a + s
        expect.append((s, u, a))
    assert spikes == [e[0] for e in expect]
    assert mems == pytest.approx([e[1] for e in expect], abs=1e-7)
    assert pscs == pytest.approx([e[2] for e in expect], abs=1e-7)
    assert sum(spikes) >= 1  # the walk above does cross the threshold


def test_spike_needs_strictly_above_threshold_and_resets_to_zero():
    state = LIFState(*(torch.zeros(1, 2) for _ in range(4)))
    one = torch.ones(2)
    # u- = 0 * 0 + 1 * c: exactly at threshold does not fire, above does
    s, new = lif_step(torch.tensor([[1.0, 1.0001]]), state, 0 * one, one, one, 1.0, 0.5, ATan())
    assert s.tolist() == [[0.0, 1.0]]
    assert new.v.tolist() == [[1.0, 0.0]]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"tau_mem": 0.0}, "tau_mem"),
        ({"tau_mem": -3.0}, "tau_mem"),
        ({"tau_mem": 0.5}, "tau_mem"),
        ({"tau_syn": 0.0}, "tau_syn"),
        ({"tau_mem": math.nan}, "tau_mem"),
        ({"v_threshold": 0.0}, "v_threshold"),
        ({"v_threshold": -1.0}, "v_threshold"),
        ({"resistance": 0.0}, "resistance"),
        ({"resistance": math.inf}, "resistance"),
    ],
)
def test_bad_neuron_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NeuronParameters(**kwargs)


def test_parameters_name_the_value():
    with pytest.raises(ValueError, match=r"got -3\.0"):
        NeuronParameters(tau_mem=-3.0)
