"""Does TSSL-BP learn? The same SC-ML classifier trained with three spike gradients, same seeds:

(a) faithful TSSL-BP in our layers (``spike_fn="tssl"``, native backend),
(b) the stateless TSSL-BP approximation inside snnTorch's own ``snn.Leaky`` (``tssl_bp()``),
(c) snnTorch's ``atan`` surrogate inside ``snn.Leaky``,

on the real TI46-Alpha subset (both splits of its README: speaker-dependent utterances 1-6 / 7-8, and
leave-one-speaker-out with f1 held out) and on MNIST-1D generated locally. Prints test accuracy and time.

    python benchmarks/bench_tssl.py --json tssl.json
"""

from __future__ import annotations

import argparse

from _common import add_common_args, compare

from snn_motifs import NeuronParameters, tssl_bp
from snn_motifs.models import SCMLClassifier


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--motif", type=int, default=8)
    args = ap.parse_args(argv)

    variants = {
        "(a) TSSL-BP faithful [native]": ("native", lambda: "tssl"),
        "(b) tssl_bp() in snn.Leaky": ("snntorch", tssl_bp),
    }
    try:
        import snntorch.surrogate as ss

        variants["(c) atan in snn.Leaky"] = ("snntorch", ss.atan)
    except ImportError:
        pass

    def builder(backend, make_fn):
        return lambda data, gain: SCMLClassifier(
            data.n_channels,
            args.hidden,
            data.n_classes,
            args.motif,
            backend=backend,
            neuron=NeuronParameters(tau_mem=16.0, tau_syn=8.0),  # Table 1
            spike_fn=make_fn(),
            input_gain=gain,
        )

    return compare(args, {name: builder(be, fn) for name, (be, fn) in variants.items()})


if __name__ == "__main__":
    main()
