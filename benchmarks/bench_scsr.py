"""Paper 003 Table 3's claim: each addition helps. FF-SNN, Sr-SNN, SrSc-SNN and SrSc-BIP of the same size,
trained with TSSL-BP and the same seeds, on the real TI46-Alpha subset (both README splits) and MNIST-1D.

    python benchmarks/bench_scsr.py --hidden 128,128,128 --json scsr.json
"""

from __future__ import annotations

import argparse

from _common import add_common_args, compare

from snn_motifs import NeuronParameters
from snn_motifs.models import SCSR_VARIANTS, build_scsr


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.add_argument("--hidden", default="128,128,128", help="paper: 400,400,400")
    ap.add_argument("--spike-fn", default="tssl")
    ap.add_argument("--backend", default="native")
    args = ap.parse_args(argv)
    hidden = tuple(int(h) for h in args.hidden.split(","))

    def builder(variant):
        return lambda data, gain: build_scsr(
            variant,
            data.n_channels,
            hidden,
            data.n_classes,
            backend=args.backend,
            neuron=NeuronParameters(tau_mem=16.0, tau_syn=8.0),
            spike_fn=args.spike_fn,
            input_gain=gain,
        )

    return compare(args, {v: builder(v) for v in SCSR_VARIANTS})


if __name__ == "__main__":
    main()
