"""Saving and copying SC-ML layers on every backend (issue 23).

A layer is copied in four situations (``PHASES``): freshly built, after one step with gradients
(``layer(x[0])``), after ``layer.run(x)``, and after a backward pass through the step API. Each way of
copying (``copy.deepcopy``, ``pickle``, ``torch.save`` of the whole module, ``torch.save`` of the
``state_dict`` read back with ``torch.load(weights_only=True)``) must give a layer with the same spikes and
membranes as the original, and a pickle holds nothing of the last sequence. The ``state_dict`` has the
same keys on every backend, so weights saved with one backend load strictly into another and give the
same spikes (the backends agree to 1e-10 in float64, the HRMAS paper's eqs 1-4 in each simulator). It
also holds the topology: weights saved under one topology are refused by a layer of another, with a
message naming both; a state_dict written before the topology was saved still loads.
"""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch

from snn_motifs import SCML, MotifTopology, SCMLClassifier, SelfRecurrent

from .conftest import (
    ALL_BACKENDS,
    HAS_NORSE,
    HAS_SNNTORCH,
    MIXED_TOPOLOGY,
    build_layer,
    drive,
    needs_snntorch,
)

PHASES = ["fresh", "step", "run", "backward"]
DTYPE = torch.float64


def layer_on(backend: str, seed: int = 0, **kwargs) -> SCML:
    """The float64 test layer (mixed topology, 32 neurons, trained leak); same seed, same weights."""
    return build_layer(backend, seed=seed, dtype=DTYPE, learn_leak=True, **kwargs)


def inputs() -> torch.Tensor:
    return drive(steps=40, batch=3, dtype=DTYPE)


def use(layer: SCML, phase: str, x: torch.Tensor):
    """Put the layer in the situation ``phase``; returns the state its last step returned (or None)."""
    if phase == "step":
        return layer(x[0])[1]
    if phase == "run":
        return layer.run(x)[1]
    if phase == "backward":
        state, loss = None, 0.0
        for x_t in x[:10]:
            spikes, mem, state = layer(x_t, state, return_mem=True)
            loss = loss + spikes.sum() + mem.pow(2).sum()
        loss.backward()
        return state
    return None


def assert_same_behaviour(original: SCML, clone: SCML, x: torch.Tensor, state=None) -> None:
    """Same spikes and membranes on a new sequence, and (given a state) when both continue it."""
    assert clone is not original and clone.fc.weight is not original.fc.weight
    assert clone.backend == original.backend
    s_ref, _, rec_ref = original.run(x, record=True)
    s, _, rec = clone.run(x, record=True)
    assert s_ref.sum() > 0, "no spikes: not a meaningful comparison"
    assert torch.equal(s, s_ref)
    assert torch.equal(rec.mem, rec_ref.mem)
    if state is not None:
        s_ref, v_ref, _ = original(x[1], state, return_mem=True)
        s, v, _ = clone(x[1], state, return_mem=True)
        assert torch.equal(s, s_ref) and torch.equal(v, v_ref)


def torch_save_load(obj, weights_only: bool):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=weights_only)


# -- copies of the whole module ------------------------------------------------------------------------
COPIES = {
    "deepcopy": copy.deepcopy,
    "pickle": lambda m: pickle.loads(pickle.dumps(m)),
    "torch.save": lambda m: torch_save_load(m, weights_only=False),
}


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_copy_of_the_whole_layer_behaves_like_the_original(backend, phase, how):
    x = inputs()
    layer = layer_on(backend)
    state = use(layer, phase, x)
    clone = COPIES[how](layer)
    assert_same_behaviour(layer, clone, x, state)


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_a_saved_layer_holds_nothing_of_the_last_sequence(backend, phase):
    """torch.save of the whole layer (a pickle) stores the layer, not the last step's membrane, weights or
    a simulator's per-call state: after any use it is as large as a fresh layer's."""
    layer = layer_on(backend)
    use(layer, phase, inputs())
    fresh = layer_on(backend)
    fresh.last_rate = layer.last_rate  # the one thing run() keeps on purpose: a detached scalar
    assert len(pickle.dumps(layer)) == len(pickle.dumps(fresh))


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_a_copy_is_independent_of_the_original(backend):
    """Changing the copy's weights after a step leaves the original alone (no shared tensors or caches)."""
    x = inputs()
    layer = layer_on(backend)
    state = use(layer, "step", x)
    s_before = layer(x[1], state)[0]
    clone = copy.deepcopy(layer)
    with torch.no_grad():
        clone.intra_weight.mul_(-3.0)
        clone.fc.weight.mul_(3.0)
    assert torch.equal(layer(x[1], state)[0], s_before)
    assert not torch.equal(clone.run(x)[0], layer.run(x)[0])


# -- state_dict ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_state_dict_round_trip_through_weights_only_load(backend, phase):
    x = inputs()
    layer = layer_on(backend)
    use(layer, phase, x)
    saved = torch_save_load(layer.state_dict(), weights_only=True)
    # the file alone says which layer to build: its topology is saved with the weights
    topology = MotifTopology(4, saved["topology_intra"], saved["topology_lateral"])
    assert topology == layer.topology
    other = layer_on(backend, seed=1, topology=topology)
    other.load_state_dict(saved, strict=True)
    assert_same_behaviour(layer, other, x)


def test_state_dict_keys_are_the_same_for_every_backend():
    """Only what the adapter owns is saved (tau, R), never a simulator's internal buffers."""
    backends = ["native"] + ["snntorch"] * HAS_SNNTORCH + ["norse"] * HAS_NORSE
    expected = [
        "intra_weight",
        "lateral_weight",
        "topology_intra",
        "topology_lateral",
        "fc.weight",
        "neurons.tau_mem",
        "neurons.resistance",
    ]
    for backend in backends:
        assert list(layer_on(backend).state_dict()) == expected, backend


@pytest.mark.parametrize("target", ALL_BACKENDS)
@pytest.mark.parametrize("source", ALL_BACKENDS)
def test_weights_saved_with_one_backend_load_strictly_into_another(source, target):
    x = inputs()
    trained = layer_on(source)
    use(trained, "backward", x)
    saved = torch_save_load(trained.state_dict(), weights_only=True)
    layer = layer_on(target, seed=1)
    layer.load_state_dict(saved, strict=True)
    s_ref, _, rec_ref = trained.run(x, record=True)
    s, _, rec = layer.run(x, record=True)
    assert 0.02 < s_ref.mean() < 0.6, "firing rate outside a meaningful range"
    assert torch.equal(s, s_ref)
    torch.testing.assert_close(rec.mem, rec_ref.mem, rtol=0, atol=1e-10)


# -- the topology in the state_dict -------------------------------------------------------------------
def test_topology_types_are_saved():
    sd = layer_on("native").state_dict()
    assert torch.equal(sd["topology_intra"].long(), MIXED_TOPOLOGY.intra)
    assert torch.equal(sd["topology_lateral"].long(), MIXED_TOPOLOGY.lateral)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_weights_of_another_topology_are_refused(backend):
    random = MotifTopology.random(4, torch.Generator().manual_seed(0))
    saved = torch_save_load(SCML(8, 16, topology=random).state_dict(), weights_only=True)
    layer = SCML(8, 16, 4, backend=backend)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    for strict in (True, False):
        with pytest.raises(RuntimeError, match="topology") as info:
            layer.load_state_dict(saved, strict=strict)
        message = str(info.value)
        assert repr(random) in message and repr(layer.topology) in message  # both named
        assert "16 of 16 intra-motif" in message and "lateral" in message  # what differs
        assert "build the layer with the saved topology" in message and "genotype" in message  # the fix
    after = layer.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())  # nothing was overwritten

    with pytest.raises(RuntimeError, match="motif size v=4 vs v=8"):
        SCML(8, 16, 8, backend=backend).load_state_dict(saved)


def test_a_large_topology_is_named_by_its_edge_counts():
    excitatory = SCML(4, 32, topology=MotifTopology.uniform(16)).state_dict()
    with pytest.raises(RuntimeError) as info:
        SCML(4, 32, 16).load_state_dict(excitatory)
    message = str(info.value)
    assert "v=16, intra edges: 0 none, 256 excitatory" in message  # saved
    assert "v=16, intra edges: 0 none, 0 excitatory, 0 inhibitory, 256 free" in message  # this layer
    assert "256 of 256 intra-motif and 32 of 32 lateral" in message


def test_a_mismatch_inside_a_model_names_the_layer():
    random = MotifTopology.random(4, torch.Generator().manual_seed(0))
    saved = SCMLClassifier(8, 16, 3, topology=random).state_dict()
    with pytest.raises(RuntimeError, match="SCML 'hidden'"):
        SCMLClassifier(8, 16, 3, 4).load_state_dict(saved)


def test_self_recurrent_weights_of_another_kind_are_refused():
    saved = SelfRecurrent(8, 16, kind="excitatory").state_dict()
    with pytest.raises(RuntimeError, match="kind='excitatory'"):
        SelfRecurrent(8, 16).load_state_dict(saved)
    SelfRecurrent(8, 16, kind="e").load_state_dict(saved)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_a_state_dict_written_before_the_topology_was_saved_still_loads(backend):
    """Old checkpoints (finished runs, resumable searches) have no topology keys: they load strictly."""
    x = inputs()
    layer = layer_on("native")
    old = {k: v for k, v in layer.state_dict().items() if not k.startswith("topology_")}
    other = layer_on(backend, seed=1)
    other.load_state_dict(old, strict=True)
    s, _, rec = other.run(x, record=True)
    s_ref, _, rec_ref = layer.run(x, record=True)
    assert torch.equal(s, s_ref)
    torch.testing.assert_close(rec.mem, rec_ref.mem, rtol=0, atol=1e-10)


def test_an_old_classifier_checkpoint_still_loads():
    """The retrained model of a finished search (SCMLClassifier, read by load_trained and on resume)."""
    random = MotifTopology.random(4, torch.Generator().manual_seed(0))
    model = SCMLClassifier(8, 16, 3, topology=random)
    old = {k: v for k, v in model.state_dict().items() if "topology_" not in k}
    assert len(old) == len(model.state_dict()) - 2
    other = SCMLClassifier(8, 16, 3, topology=random)
    other.load_state_dict(old, strict=True)
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in model.state_dict().items())


@needs_snntorch
@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_an_old_snntorch_state_dict_with_the_leaky_buffers_still_loads(backend):
    """Earlier versions saved snnTorch's Leaky buffers (neurons.neuron.threshold, ...): they are ignored."""
    import snntorch

    layer = layer_on("snntorch")
    old = {k: v for k, v in layer.state_dict().items() if not k.startswith("topology_")}
    stock = snntorch.Leaky(beta=layer.neurons.leak().detach(), threshold=1.0, reset_mechanism="zero")
    snntorch.SpikingNeuron.instances.remove(stock)
    old.update({f"neurons.neuron.{k}": v for k, v in stock.state_dict().items()})
    assert "neurons.neuron.threshold" in old and "neurons.neuron.graded_spikes_factor" in old
    other = layer_on(backend, seed=1)
    other.load_state_dict(old, strict=True)
    x = inputs()
    assert torch.equal(other.run(x)[0], layer.run(x)[0])


# -- Norse: the spike function's method name ----------------------------------------------------------
class _Heaviside:
    """A spike function without a name (its repr is an address): Norse registers it by identity."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x > 0).to(x.dtype)


@pytest.mark.parametrize("how", list(COPIES))
def test_norse_copy_with_an_anonymous_spike_function(how):
    pytest.importorskip("norse")
    x = inputs()
    layer = layer_on("norse", spike_fn=_Heaviside())
    clone = COPIES[how](layer)
    with torch.no_grad():
        assert_same_behaviour(layer, clone, x)
        assert_same_behaviour(clone, layer, x)  # both stay usable, in either order


def test_a_state_dict_saved_before_issue_26_loads():
    """The key layout of a state_dict written by the code before issue 26 (``tests/data``, made at commit
    3b749b1: ``intra_weight``, ``lateral_weight``, the topology, ``fc.weight``, ``neurons.tau_mem``,
    ``neurons.resistance``) loads strictly and gives the spikes and membranes it gave then, on each kernel."""
    from pathlib import Path

    from snn_motifs import NeuronParameters

    blob = torch.load(Path(__file__).parent / "data" / "scml_state_dict_3b749b1.pt", weights_only=True)
    saved = blob["state_dict"]
    topology = MotifTopology(2, saved["topology_intra"], saved["topology_lateral"])
    neuron = NeuronParameters(tau_mem=4.0, tau_syn=2.0)
    for kernel in ("step", "fused"):
        layer = SCML(3, 8, topology=topology, neuron=neuron, learn_leak=True, learn_gain=True, kernel=kernel)
        layer.load_state_dict(saved, strict=True)
        spikes, state = layer.run(blob["x"])
        assert torch.equal(spikes, blob["spikes"]) and blob["spikes"].sum() > 0, kernel
        torch.testing.assert_close(state.v, blob["mem"], rtol=1e-6, atol=1e-7)
