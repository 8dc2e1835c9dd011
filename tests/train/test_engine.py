"""The generic Trainer on a tiny model: learning, cancel, resume, repeatability, DDP."""

from __future__ import annotations

import json
import socket

import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader, TensorDataset

from training.engine import EpochSampler, HistoryCallback, Trainer, latest_state_dir


def _data(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1
    return TensorDataset(x, y[:, None])


def _step(model, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def _make(tmp_path, epochs=3, should_stop=None, seed=0, callbacks=()):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    sampler = EpochSampler(64, seed=seed)
    loader = DataLoader(_data(), batch_size=16, sampler=sampler)
    val = _data(1, 32)

    def validate(m):
        x, y = val.tensors
        return {"val_loss": float(torch.nn.functional.mse_loss(m(x), y))}

    return Trainer(model, opt, loader, _step, validate, epochs=epochs, state_dir=tmp_path / "state",
                   should_stop=should_stop, callbacks=callbacks, sampler=sampler)


def test_loss_goes_down_and_state_written(tmp_path):
    hist = HistoryCallback()
    tr = _make(tmp_path, epochs=5, callbacks=[hist])
    res = tr.fit()
    assert not res.cancelled and res.epochs_done == 5
    assert hist.epochs[-1]["val_loss"] < hist.epochs[0]["val_loss"] * 0.7
    latest = latest_state_dir(tmp_path / "state")
    assert latest is not None and latest.name == "epoch-0004"
    assert len(list((tmp_path / "state").glob("epoch-*"))) == 1
    assert res.images_per_second > 0


def test_repeatable_on_cpu(tmp_path):
    a = _make(tmp_path / "a", epochs=2)
    a.fit()
    b = _make(tmp_path / "b", epochs=2)
    b.fit()
    for (ka, va), (kb, vb) in zip(a.raw_model.state_dict().items(), b.raw_model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_cancel_keeps_last_good_state_and_resume_continues(tmp_path):
    calls = {"n": 0}

    def stop_in_epoch_two():
        calls["n"] += 1
        return calls["n"] > 4 + 2  # epoch 0 has 4 steps; stop inside epoch 1

    tr = _make(tmp_path, epochs=4, should_stop=stop_in_epoch_two)
    res = tr.fit()
    assert res.cancelled and res.epochs_done == 1
    latest = latest_state_dir(tmp_path / "state")
    assert latest.name == "epoch-0000"
    state = json.loads((latest / "state.json").read_text())
    assert state["global_step"] == 4
    saved = load_file(str(latest / "model.safetensors"))
    assert set(saved) == set(tr.raw_model.state_dict())

    # resume from it: a fresh trainer continues at epoch 1 and finishes
    tr2 = _make(tmp_path, epochs=4)
    assert tr2.load_state()
    assert tr2.start_epoch == 1 and tr2.global_step == 4
    for k, v in saved.items():
        assert torch.equal(tr2.raw_model.state_dict()[k], v)
    assert tr2.optimizer.state_dict()["state"], "optimizer moments restored"
    res2 = tr2.fit()
    assert not res2.cancelled and res2.epochs_done == 4
    assert latest_state_dir(tmp_path / "state").name == "epoch-0003"
    assert [h["epoch"] for h in res2.history] == [0, 1, 2, 3]


def test_resume_equals_uninterrupted_run(tmp_path):
    full = _make(tmp_path / "full", epochs=3)
    full.fit()
    part = _make(tmp_path / "part", epochs=3)
    part.epochs = 2
    part.total_steps = part.steps_per_epoch * 3  # same schedule as the full run
    part.fit()
    cont = _make(tmp_path / "part", epochs=3)
    cont.load_state()
    cont.fit()
    for k, v in full.raw_model.state_dict().items():
        assert torch.allclose(cont.raw_model.state_dict()[k], v, atol=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, out_dir):
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from torch.utils.data.distributed import DistributedSampler

    from training import ddp
    from training.engine import Trainer

    info = ddp.setup(torch.device("cpu"))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    data = _data()
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=8, sampler=sampler)
    tr = Trainer(model, opt, loader, _step, None, epochs=2, dist_info=info, sampler=sampler,
                 state_dir=out_dir / "state")
    tr.fit()
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tr.raw_model.state_dict().items()}, str(out_dir / f"rank{rank}.safetensors"))
    ddp.teardown(info)


@pytest.mark.slow
def test_ddp_two_cpu_processes_end_with_identical_weights(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, _free_port(), tmp_path), nprocs=2, join=True)
    a = load_file(str(tmp_path / "rank0.safetensors"))
    b = load_file(str(tmp_path / "rank1.safetensors"))
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k])
    init = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    torch.manual_seed(0)
    init = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    assert not torch.equal(init[0].weight, a["0.weight"]), "weights were trained"
    # only rank 0 wrote the state
    assert latest_state_dir(tmp_path / "state") is not None
