"""Exp 1: today's generator: cue attribution and Spreading from scratch."""
import json, sys
sys.path.insert(0, "/work/scratch")
from probe import *
from gen import Regime, make_set
import dataclasses

name = sys.argv[1]
regimes = {
    "today": Regime(),
    "no_bg": Regime(background="off"),
    "no_light": Regime(lighting="off"),
    "no_clutter": Regime(clutter_n=(0, 0)),
    "no_occ": Regime(occluder="off"),
    "scene_all": Regime(background="scene", clutter="scene", lighting="scene", occluder="scene", scenes=30),
}
r = regimes[name]
t = timer()
Xtr, ytr, str_, _ = make_set(r, "cub200", range(1, 51), 20)
Xte, yte, ste, _ = make_set(r, "cub200", range(51, 101), 20)
Xtr, Xte = to_tensor(Xtr), to_tensor(Xte)
tw = twin_sets(r, "cub200", range(51, 101), 4)
print("data", t(), flush=True)
m = new_model(0)
ev = lambda m: {**evaluate(m, Xte, yte, ste), **twin_probe(m, tw), **{"p_" + k: v for k, v in twin_probe(m, tw, True).items()}}
res = {"regime": name, "random": ev(m)}
print(json.dumps(res), flush=True)
log = []
train_spreading(m, Xtr, epochs=int(sys.argv[2]) if len(sys.argv) > 2 else 15, lr=0.03, milestones=(), log=log, eval_fn=ev)
res["spreading"] = log[-1]
res["time"] = t()
print("RESULT", json.dumps(res), flush=True)
