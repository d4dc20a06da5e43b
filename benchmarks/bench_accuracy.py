"""Accuracy of the library's default recipe against honest baselines, same script, same seeds.

Every network is trained by ``snn_motifs.training.fit`` with its defaults (AdamW 1e-2, cosine schedule,
clipping, calibrated input gain, the model's readout); the baselines use the same loop and loss:

* SC-ML (the HRMAS paper) with the default arc-tangent surrogate and with TSSL-BP (``spike_fn="tssl"``), with
  the default free-sign motif and with a uniform excitatory motif (the paper's excitatory edges);
* a dense RSNN of the same size (every recurrent weight trained, free sign);
* the ScSr-SNN family (Zhang & Li): FF-SNN, Sr-SNN (self-recurrent) of the same size, and SrSc-BIP
  (two self-recurrent layers of half the size, skip connection into the readout, trained leaks);
* the papers' spiking output layer with the count and kernel losses instead of the membrane readout;
* non-spiking baselines: logistic regression on the flattened input, and a GRU of the same hidden size.

Data: TI46-Alpha (speaker-dependent utterances 1-6 / 7-8, and leave-speaker-f1-out) and MNIST-1D.

    python benchmarks/bench_accuracy.py --json benchmarks/results/bench_accuracy.json
"""

from __future__ import annotations

import argparse

from _common import add_common_args, compare

from snn_motifs import ConnectionType, MotifTopology, SCMLClassifier, build_scsr
from snn_motifs.search.baselines import GRUClassifier, LogisticRegression


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.add_argument("--hidden-ti46", type=int, default=200)
    ap.add_argument("--hidden-mnist1d", type=int, default=128)
    ap.add_argument("--motif", type=int, default=8)
    ap.add_argument("--models", default="all", help="comma-separated subset of the model names")
    args = ap.parse_args(argv)

    def size(data) -> int:
        return args.hidden_mnist1d if data.n_classes == 10 else args.hidden_ti46

    def scml(spike_fn, topology=None, readout_override=None):
        return lambda d, neuron, readout: SCMLClassifier(
            d.n_channels,
            size(d),
            d.n_classes,
            None if topology else args.motif,
            topology=topology,
            neuron=neuron,
            spike_fn=spike_fn,
            readout=readout_override or readout,
        )

    def dense(d, neuron, readout):
        topo = MotifTopology.uniform(size(d), ConnectionType.FREE, None)
        n = size(d)
        return SCMLClassifier(d.n_channels, n, d.n_classes, topology=topo, neuron=neuron, readout=readout)

    def scsr(variant, halves=False):
        def build(d, neuron, readout):
            hidden = (size(d) // 2, size(d) // 2) if halves else (size(d),)
            return build_scsr(
                variant, d.n_channels, hidden, d.n_classes, neuron=neuron, spike_fn=None, readout=readout
            )

        return build

    models = {
        "SC-ML atan": scml(None),
        "SC-ML TSSL-BP": scml("tssl"),
        "SC-ML atan (excitatory motif)": scml(None, MotifTopology.uniform(args.motif)),
        "SC-ML TSSL-BP (excitatory motif)": scml("tssl", MotifTopology.uniform(args.motif)),
        "SC-ML atan (spiking count readout)": scml(None, readout_override="count"),
        "SC-ML atan (spiking kernel readout)": scml(None, readout_override="kernel"),
        "dense RSNN atan": dense,
        "FF-SNN atan": scsr("FF-SNN"),
        "Sr-SNN atan": scsr("Sr-SNN"),
        "SrSc-BIP atan (2 x N/2)": scsr("SrSc-BIP", halves=True),
        "logistic regression": lambda d, _n, _r: LogisticRegression(d.n_steps, d.n_channels, d.n_classes),
        "GRU": lambda d, neuron, readout: GRUClassifier(d.n_channels, size(d), d.n_classes),
    }
    if args.models != "all":
        wanted = args.models.split(",")
        unknown = sorted(set(wanted) - set(models))
        if unknown:
            raise SystemExit(f"unknown models {unknown}; choose from {list(models)}")
        models = {k: models[k] for k in wanted}
    return compare(args, models)


if __name__ == "__main__":
    main()
