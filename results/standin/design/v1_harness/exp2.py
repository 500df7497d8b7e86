"""Exp 2: start / supervised / spreading with a source pre-training, per generator config."""
import json, sys, os, copy
sys.path.insert(0, "/work/scratch")
from probe import *
from gen import Regime, make_set, SOURCE_SHAPES
import torch

cfg = json.loads(sys.argv[1])
name = cfg["name"]
T = Regime(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg["target"].items()})
S = Regime(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg["source"].items()})
per = cfg.get("per_class", 20)
t = timer()
Xtr, ytr, _, _ = make_set(T, "cub200", range(1, 51), per)
Xte, yte, ste, _ = make_set(T, "cub200", range(51, 101), per)
Xtr, Xte = to_tensor(Xtr), to_tensor(Xte)
wpath = f"/work/scratch/cache/{cfg.get('source_name', name)}.pt"
os.makedirs("/work/scratch/cache", exist_ok=True)
if os.path.exists(wpath):
    w = torch.load(wpath)
else:
    Xs, ys, _, _ = make_set(S, "imagenet", range(1, 101), 30)
    w = pretrain_classifier(to_tensor(Xs), ys, epochs=cfg.get("pre_epochs", 12))
    torch.save(w, wpath)
print("data+pretrain", t(), flush=True)
wfile = "/tmp/w_" + name + ".pt"
torch.save(w, wfile)
ev = lambda m: evaluate(m, Xte, yte, ste)
res = {"name": name}
res["random"] = ev(new_model(0))
start = new_model(0, wfile)
res["start"] = ev(start)
print(json.dumps(res), flush=True)
for what in cfg.get("runs", ["supervised", "spreading", "spreading_nn"]):
    m = new_model(0, None if what.startswith("scratch") else wfile)
    log = []
    if what == "scratch_spreading":
        train_spreading(m, Xtr, epochs=15, lr=0.03, log=log, eval_fn=ev)
    elif what == "supervised":
        train_supervised(m, Xtr, ytr, epochs=cfg.get("sup_epochs", 10), lr=0.01, log=log, eval_fn=ev)
    elif what.startswith("spreading"):
        train_spreading(m, Xtr, epochs=cfg.get("spr_epochs", 10), lr=cfg.get("spr_lr", 1e-3), log=log, eval_fn=ev,
                        nn_prob=0.5 if what.endswith("nn") else 0.0)
    res[what] = log[-1]
    print(json.dumps({what: log[-1]}), flush=True)
res["time"] = t()
print("RESULT", json.dumps(res), flush=True)
