"""Learned one-shot mechanisms in the registry: ``"rpf_net"``, ``"exs_net"``, ``"softmax_net"``.

``make_one_shot("rpf_net")`` uses the weights shipped in ``mechanisms/weights/`` for the size
of the input arrays (2x2 and 10x3 are shipped for RPF-Net and ExS-Net; see
``weights/README.md`` for the commands that produced them); other sizes raise a
``ValueError`` naming the command that trains one. ``make_one_shot("rpf_net",
weights_path=...)`` loads a checkpoint written by ``mechzoo train-mechanism``, and
``make_one_shot("rpf_net", model=net)`` wraps a :class:`MechanismNet` (or a
:class:`MechanismEnsemble`, see :func:`combine_models`) in memory.
``make_one_shot("rpf_net", network_gradient=False)`` allocates identically, but its
``allocate_torch`` passes the reports' gradient through the PF program only (not through the
network), as the RPF-Net paper's closed-form gradients do: a gradient oracle then searches as
the paper's did.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .feasibility import repair_feasibility
from .learned_nets import ARCHITECTURES, MechanismEnsemble, MechanismNet, build_network, check_network_gradient
from .registry import OneShotMechanism, register_one_shot
from .validation import check_instance

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DESCRIPTIONS = {
    "rpf_net": "RPF-Net: PF regularised by a learned linear term (trained, shipped for 2x2 and 10x3)",
    "exs_net": "ExS-Net: learned softmax shares with a withholding agent (trained, shipped for 2x2 and 10x3)",
    "softmax_net": "standard network: learned softmax shares without withholding (ablation)",
}


def shipped_weights_path(architecture: str, n_agents: int, n_resources: int) -> Path:
    """Where the shipped weights for ``architecture`` at size ``N x M`` live (they may not exist)."""
    return WEIGHTS_DIR / f"{architecture}_{n_agents}x{n_resources}.pt"


def train_command(architecture: str, n_agents: int, n_resources: int) -> str:
    """The command that trains weights for this size."""
    return (f"mechzoo train-mechanism {architecture.replace('_', '-')} --agents {n_agents} "
            f"--resources {n_resources} --out DIR")


Network = MechanismNet | MechanismEnsemble


def save_model(model: Network, path: str | Path, record: dict | None = None) -> None:
    """Write ``model`` (config and weights) and a JSON-able ``record`` (how it was trained) to ``path``."""
    torch.save({"config": model.config(), "state_dict": model.state_dict(), "record": record or {}}, path)


def load_model(path: str | Path) -> Network:
    """The :class:`MechanismNet` or :class:`MechanismEnsemble` saved at ``path`` (by
    :func:`save_model`, :func:`combine_models` or a training checkpoint). Loaded once per version
    of the file: a file written again is read again."""
    return _load_saved(path)[0]


def saved_record(path: str | Path) -> dict:
    """The training record saved with the weights at ``path`` (``{}`` for a training checkpoint)."""
    return copy.deepcopy(_load_saved(path)[1])


def _load_saved(path: str | Path) -> tuple[Network, dict]:
    """The network and the record saved at ``path``, read once per version (modification time, size)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no weights file at {path}")
    stat = path.stat()
    return _read_saved(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=32)
def _read_saved(path: str, mtime_ns: int, size: int) -> tuple[Network, dict]:
    """:func:`_load_saved` for one version of the file at ``path``."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if "model_config" in saved:  # a training checkpoint: the network sits beside the training state
            saved = {"config": saved["model_config"], "state_dict": saved["model"]}
        model = build_network(saved["config"])
        model.load_state_dict(saved["state_dict"])
    except (KeyError, TypeError, RuntimeError, OSError) as err:
        raise ValueError(f"{path} is not a mechzoo mechanism checkpoint: {err}") from err
    model.eval()
    return model, saved.get("record", {})


def combine_models(paths: list[str | Path], out: str | Path, command: str = "") -> MechanismEnsemble:
    """Save to ``out`` the :class:`MechanismEnsemble` of the networks saved at ``paths`` (each one
    network of the same architecture and size) and return it. Its record names every member's file
    and keeps the member's own record (the command that trained it), beside ``command``."""
    if not paths:
        raise ValueError("combine at least one weights file")
    names = [str(Path(p).resolve()) for p in paths]
    twice = sorted({p for p in names if names.count(p) > 1})
    if twice:
        raise ValueError(f"weights file given more than once: {', '.join(twice)}")
    members = []
    for path in paths:
        model = load_model(str(path))
        if isinstance(model, MechanismEnsemble):
            raise ValueError(f"{path} is already an ensemble of {len(model.members)} networks; combine its member "
                             "files instead (an ensemble of ensembles would weight their members unequally)")
        members.append(copy.deepcopy(model))  # load_model's models are cached and shared
    ensemble = MechanismEnsemble(members)
    record = {"command": command, "members": [{"file": str(p), "record": saved_record(p)} for p in paths]}
    save_model(ensemble, out, record)
    return ensemble


def learned_mechanism(architecture: str, weights_path: str | Path | None = None,
                      model: Network | None = None, network_gradient: bool = True) -> OneShotMechanism:
    """The registry entry for ``architecture``: shipped weights by size, a file, or a model.

    ``network_gradient=False`` (RPF-Net only): ``allocate_torch`` differentiates through the PF
    program alone, the network's ``z`` held constant under differentiation (same allocation).
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    check_network_gradient(architecture, network_gradient)
    if weights_path is not None and model is not None:
        raise ValueError("pass weights_path or model, not both")
    if weights_path is not None:
        model = load_model(str(weights_path))
    if model is not None and model.architecture != architecture:
        raise ValueError(f"the weights are a {model.architecture}, not a {architecture}")

    shipped: dict[tuple[int, int], Network] = {}  # loaded once per size, not on every allocation

    def network(n: int, m: int) -> Network:
        if model is not None:
            if (model.n_agents, model.n_resources) != (n, m):
                raise ValueError(f"this {architecture} was trained for (N, M) = {(model.n_agents, model.n_resources)}, "
                                 f"got reports for {(n, m)}; train one with: {train_command(architecture, n, m)}")
            return model
        if (n, m) not in shipped:
            path = shipped_weights_path(architecture, n, m)
            if not path.is_file():
                raise ValueError(f"no shipped {architecture} weights for N={n} agents and M={m} resources; train "
                                 f"them with `{train_command(architecture, n, m)}` and pass "
                                 f"weights_path='DIR/{architecture}_{n}x{m}.pt' to make_one_shot")
            shipped[n, m] = load_model(path)
        return shipped[n, m]

    def allocate_torch(values, demands, budget, past=None) -> torch.Tensor:
        values, demands, budget = (_tensor(t) for t in (values, demands, budget))
        past = torch.zeros_like(values) if past is None else _tensor(past)
        inst = check_instance(*(t.detach().cpu().numpy() for t in (values, demands, budget, past)))
        batch, (n, m) = inst.batch_shape, (inst.n_agents, inst.n_resources)
        flat = [t.expand(batch + t.shape[-k:]).reshape((-1,) + t.shape[-k:])
                for t, k in ((values, 2), (demands, 2), (budget, 1), (past, 2))]
        return network(n, m)(*flat, network_gradient=network_gradient).reshape(batch + (n, m))

    def allocate(values, demands, budget, past=None) -> np.ndarray:
        with torch.no_grad():
            alloc = allocate_torch(values, demands, budget, past).numpy()
        return repair_feasibility(alloc, np.asarray(demands, dtype=np.float64), np.asarray(budget, dtype=np.float64))

    return OneShotMechanism(architecture, allocate, DESCRIPTIONS[architecture], allocate_torch)


def _tensor(data) -> torch.Tensor:
    """A float64 tensor: tensors keep their autograd graph, arrays are copied (they may be read-only)."""
    if isinstance(data, torch.Tensor):
        return data.to(torch.float64)
    return torch.from_numpy(np.array(data, dtype=np.float64))


def _factory(architecture: str):
    def factory(weights_path: str | Path | None = None, model: Network | None = None,
                network_gradient: bool = True) -> OneShotMechanism:
        return learned_mechanism(architecture, weights_path, model, network_gradient)

    return factory


for _name in ARCHITECTURES:
    register_one_shot(_name, _factory(_name))
