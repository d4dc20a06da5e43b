"""HRMAS, the Hybrid Risk-Mitigating Architectural Search (the HRMAS paper, sec 2.3, Algorithm 1,
Figure 4), as a package whose modules follow the data:

========================  ==================================================================
:mod:`.config`            :class:`HRMASConfig`, its validation, the packaged JSON configs
:mod:`.space`             the mixed op :class:`MixedMotifLayer` (eqs 11, 15) and the searched network
:mod:`.architect`         the optimiser of ``alpha``, first or second order (eqs 12-14)
:mod:`.schedule`          the incremental phases (Figure 4), one Algorithm 1 epoch, the IP window
:mod:`.genotype`          the discretised architecture and its JSON form
:mod:`.retrain`           genotype -> SC-ML classifier -> retrained and tested; trained models on disk
:mod:`.baselines`         random search, the ablations, the dense RSNN
:mod:`.runner`            one seed end to end, checkpoint/resume, progress, results
:mod:`.cost`              the expected cost of the relaxation and the cost term of the architecture loss
:mod:`.experiment`        :func:`run`: seeds, the no-IP comparison, the dense baseline, summary
:mod:`.figures`           the figures of a run folder (:func:`plot_run`)
:mod:`.trials`            seeds and ablations as Ray Tune trials
:mod:`.sweep`             hyper-parameter sweeps on Ray Tune (Optuna + ASHA)
========================  ==================================================================

``snn_motifs.search.run("mnist1d_default")`` does what ``snn-motifs search`` does: ``run_method`` (one
config's seeds; returns its summary) or, with ``ablation="all"``, ``run_ablations`` (returns the table).
"""

from .architect import Architect, second_order_arch_grad
from .baselines import ABLATIONS, dense_rsnn, random_trial, train_dense_baseline, with_ablation
from .config import HRMASConfig, config_names, load_config, load_data
from .cost import COSTS, cost_penalty, expected_cost
from .experiment import check_device, cost_line, run, run_ablations, run_method, summarise
from .figures import plot_run, write_figures
from .genotype import Genotype
from .retrain import build_classifier, load_trained, retrain, test_cost, train_genotype, trained_file
from .runner import HRMASRun, Interrupted
from .schedule import IPWindow, search_epoch, split_search
from .space import MixedMotifLayer, arch_parameters, search_network, weight_parameters

__all__ = [
    "COSTS",
    "cost_penalty",
    "expected_cost",
    "test_cost",
    "trained_file",
    "cost_line",
    "HRMASConfig",
    "load_config",
    "config_names",
    "MixedMotifLayer",
    "search_network",
    "arch_parameters",
    "weight_parameters",
    "Architect",
    "second_order_arch_grad",
    "IPWindow",
    "search_epoch",
    "split_search",
    "Genotype",
    "build_classifier",
    "retrain",
    "train_genotype",
    "load_trained",
    "ABLATIONS",
    "with_ablation",
    "random_trial",
    "dense_rsnn",
    "train_dense_baseline",
    "HRMASRun",
    "Interrupted",
    "run",
    "run_method",
    "run_ablations",
    "load_data",
    "summarise",
    "write_figures",
    "plot_run",
    "check_device",
]
