"""Generate notebooks/<name>.ipynb from templates: this file is the canonical source of the notebooks (one
template for the table notebooks, one per figure notebook).

Run `python tools/make_notebooks.py` after editing; `--check` (run by the tests) fails if a committed notebook's
content differs from what this script would write. Cell ids are deterministic and no outputs are stored.

Content is what a notebook runs and shows: its cells' types, sources and tags (the `parameters` tag), the
kernel's name and stored outputs (there must be none). What JupyterLab rewrites when it opens or autosaves a
notebook is not content and is ignored: the kernel's display name, `language_info`, execution counts, cell UI
state (`collapsed`, `scrolled`, `jupyter`, `execution` timings, ...), the JSON layout and cell ids.
`--out DIR` writes fresh copies elsewhere (e.g. `runs/lab/`, git-ignored) to work on in JupyterLab.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ssml_lib.experiments.tables import PAPER_TABLES, TABLES  # noqa: E402

PARAMETERS = '''\
method = "{method}"  # the row: {rows}
data_root = None  # None: the embedded stand-in; else the folder holding {folders}
params_file = None  # e.g. "params/{table}/{example}.yaml" (real data; set method to the file's row)
standin_size = None  # stand-in scale: "tiny" (tests) or "default" (minutes on a 2-core CPU); None: "default"
device = None  # "auto", "cpu" or "cuda"; None: the params file's, else "auto"
seed = None  # None: the params file's, else 0'''

FOLDERS = {"recall": {"cub200": "CUB_200_2011/", "cars196": "cars196/", "sop": "Stanford_Online_Products/"},
           "revisited": "gldv2/, roxford5k/, rparis6k/"}


def notebook(name: str) -> nbformat.NotebookNode:
    spec = TABLES[name]
    number = name.split("_")[0].replace("table", "")
    folders = FOLDERS["revisited"] if spec.protocol == "revisited" else FOLDERS["recall"][spec.train_dataset]
    example = next((m for m in spec.methods if m != "pretrained"), spec.methods[0])
    intro = (f"# Table {number}: {spec.caption}\n\n"
             f"From the thesis *Self-supervised Metric Learning*, Table {number}. Backbone "
             f"{spec.backbone} ({'ImageNet pre-trained' if spec.init == 'imagenet' else 'from scratch'}); "
             f"rows: {', '.join(f'`{m}`' for m in spec.methods)}.\n\n"
             f"- One row: `papermill notebooks/{name}.ipynb out.ipynb -p method {example}`\n"
             f"- Paper scale: `papermill notebooks/{name}.ipynb out.ipynb -p method {example} "
             f"-p params_file params/{name}/{example}.yaml -p data_root /data`\n\n"
             "With no `data_root` the notebook runs on the embedded **stand-in** (small synthetic datasets in the "
             "real layouts): its numbers check the pipeline and are labelled as stand-in results; they are not "
             "comparable with the paper's. Results go to `results/<table>/` and `results/<table>.md` with their "
             "provenance; stand-in runs write to `runs/results/standin-<size>/` (git-ignored; `results/standin/` "
             "holds the recorded stand-in study, written only by `python -m ssml_lib.experiments.record`).")
    params = PARAMETERS.format(method="pretrained", rows=", ".join(spec.methods), folders=folders, table=name,
                               example=example)
    return _assemble(intro, params, "from ssml_lib.experiments import run_notebook_row, show\n\n"
                                    f'row = run_notebook_row("{name}", globals())', "show(row)", name.split("_")[0])


# ---------------------------------------------------------------- the method papers' tables

PAPER_PARAMETERS = '''\
method = "pretrained"  # the row: {rows}
data_root = None  # None: the embedded stand-in; else the folder holding {folders}
params_file = None  # e.g. "params/{table}/insclr.yaml" (real data; set method to the file's row)
standin_size = "tiny"  # stand-in scale: "tiny" (seconds; the default here) or "default" (minutes on a 2-core CPU)
device = None  # "auto", "cpu" or "cuda"; None: the params file's, else "auto"
seed = None  # None: the params file's, else 0
whitening = {whitening}  # "pca": learned PCA-whitening fitted on the training set; "none"; None: the params file's, else "none"'''

PAPER_INTROS = {
    "paper_insclr_table3_revisited": dict(
        folders="gldv2/, roxford5k/, rparis6k/, revisitop1m/", whitening='"pca"',
        what="rOxford5k and rParis6k, Medium and Hard mAP (revisited protocol), each also with the revisitop 1M "
             "distractors added to the database (`+r1m`)",
        rows="The paper's ImageNet row (R101-GeM, Radenović et al. 2018) is whitened (it is the paper's Table 1 "
             "\"ImageNet + PCA*\"), so this notebook's default row is the pre-trained network with learned "
             "PCA-whitening (`whitening: pca`, fitted on the GLDv2 training set); `-p whitening none` gives the "
             "plain row, which the paper does not print."),
    "paper_insclr_table4_oxford_paris": dict(
        folders="gldv2/, oxford5k/, paris6k/, flickr100k/", whitening="None",
        what="the original Oxford5k and Paris6k mAP (queries cropped to their box, good + ok positive, junk "
             "ignored), and Oxford105k / Paris106k with the 100k Flickr distractors",
        rows="The paper prints InsCLR and (Iscen et al. 2018) only; the default row here, the pre-trained "
             "network, has no paper number (`-p whitening pca` whitens it)."),
    "paper_insclr_table5_gldv2_retrieval": dict(
        folders="gldv2/ (training files and the retrieval files index.csv, test.csv, retrieval_solution_v2.1.csv)",
        whitening="None",
        what="the GLDv2 retrieval task, mAP@100 on the Public (\"validation\") and Private (\"test\") queries",
        rows="The paper's ImageNet row is not whitened; `-p whitening pca` adds the whitened row."),
}


def paper_notebook(name: str) -> nbformat.NotebookNode:
    if name in SPREADING_UNSEEN:
        return spreading_unseen_notebook(name)
    spec, text = PAPER_TABLES[name], PAPER_INTROS[name]
    intro = (f"# {spec.caption}\n\n"
             f"Reproduces {text['what']}, for an ImageNet pre-trained {spec.backbone} (GeM), before (`pretrained`) "
             "and after InsCLR training on GLDv2 (`insclr`). The paper's numbers beside ours come from "
             f"`results/reference/{name}.csv` (transcribed from the paper; its README gives the choices made). "
             f"{text['rows']}\n\n"
             f"- Paper scale: `papermill notebooks/{name}.ipynb out.ipynb -p method insclr "
             f"-p params_file params/{name}/insclr.yaml -p data_root /data`\n"
             f"- The larger stand-in: `papermill notebooks/{name}.ipynb out.ipynb -p standin_size default`\n\n"
             "With no `data_root` the notebook runs on the embedded **stand-in** (small synthetic datasets in the "
             "real layouts; the tiny size by default, so that it runs in seconds): its numbers check the pipeline, "
             "are labelled as stand-in results and are **not comparable with the paper's**. Results and their "
             f"provenance go to `results/{name}/` (real data) or `runs/results/standin-<size>/` (stand-in). "
             "docs/paper_insclr_benchmarks.md describes the protocol and the stand-in.")
    params = PAPER_PARAMETERS.format(rows=", ".join(spec.methods), folders=text["folders"], table=name,
                                     whitening=text["whitening"])
    return _assemble(intro, params, "from ssml_lib.experiments import run_notebook_row, show\n\n"
                                    f'row = run_notebook_row("{name}", globals())', "show(row)", name.split("_")[2])


# ---------------------------------------------------------------- the Spreading paper's unseen-class tables

SPREADING_UNSEEN_PARAMETERS = '''\
method = ["pretrained", "spreading"]  # rows: {rows}
paper_scale = False  # True (needs data_root): each row reads params/{table}/<row>.yaml
data_root = None  # None: the embedded stand-in; else the folder holding {folder}
params_file = None  # one row's params file instead (with a single method)
standin_size = "tiny"  # stand-in scale: "tiny" (seconds; the default here) or "default" (minutes on a 2-core CPU)
epochs = None  # None: the stand-in recipe's (1 at "tiny") or the params file's
device = None  # "auto", "cpu" or "cuda"; None: the params file's, else "auto"
seed = None  # None: the params file's, else 0'''

SPREADING_UNSEEN = {
    "paper_spreading_table3_cub": dict(
        number="3", folder="CUB_200_2011/", rows_text="`pretrained` (\"Initial (FC)\": the ImageNet Inception-V1 "
        "with its new, untrained 128-d FC), `spreading` (\"Ours\", with the nearest instance as positive half the "
        "time, as the paper says for CUB), `nce` (\"NCE [46]\"), `mom` (\"MOM [21]\"). The paper's Cyclic, "
        "Exemplar and DeepCluster rows and its four supervised rows (Lifted, Clustering, Triplet+, Smart+) show its "
        "number only."),
    "paper_spreading_table4_sop": dict(
        number="4", folder="Stanford_Online_Products/", rows_text="`pretrained` (\"Initial (FC)\"), `spreading` "
        "(\"Ours\"), `nce`, `mom`; the paper's Exemplar and DeepCluster rows show its number only."),
    "paper_spreading_table5_cars": dict(
        number="5", folder="cars196/", rows_text="`pretrained` (\"Initial (FC)\"), `spreading` (\"Ours\"), "
        "`nce`, `mom`; the paper's Exemplar and DeepCluster rows show its number only."),
    "paper_spreading_table6_sop_scratch": dict(
        number="6", folder="Stanford_Online_Products/", rows_text="`pretrained` (\"Random\": the untrained "
        "ResNet18 with its 128-d FC), `spreading` (\"Ours\"), `nce`, `mom` (which the paper reports failing: below "
        "Random); the paper's Exemplar row shows its number only."),
}


def spreading_unseen_notebook(name: str) -> nbformat.NotebookNode:
    spec, text = PAPER_TABLES[name], SPREADING_UNSEEN[name]
    intro = (f"# {spec.caption}\n\n"
             f"From the Spreading paper (Ye et al., CVPR 2019, \"Unsupervised Embedding Learning via Invariant and "
             f"Spreading Instance Feature\"), Table {text['number']}: trained without labels on the first half of the "
             "classes, then Recall@K and NMI on the unseen other half, with a 128-d L2-normalised FC after the "
             f"backbone's pooling ({spec.backbone}, {'ImageNet pre-trained' if spec.init == 'imagenet' else 'from scratch'}). "
             f"Rows: {text['rows_text']} The paper's numbers beside ours come from `results/reference/{name}.csv`.\n\n"
             f"- More rows: `papermill notebooks/{name}.ipynb out.ipynb -p method '[\"pretrained\", \"spreading\", "
             "\"nce\", \"mom\"]'`\n"
             f"- The larger stand-in: `papermill notebooks/{name}.ipynb out.ipynb -p standin_size default`\n"
             f"- Paper scale: `papermill notebooks/{name}.ipynb out.ipynb -p paper_scale True -p data_root /data` "
             f"(each row reads `params/{name}/<row>.yaml`)\n\n"
             "With no `data_root` the notebook runs on the embedded **stand-in** (small synthetic datasets in the real "
             "layouts, a convnet4 at 48 px with the cached stand-in \"ImageNet\" start; the tiny size by default, so "
             "that it runs in seconds): its numbers check the pipeline, are labelled as stand-in results and are **not "
             f"comparable with the paper's**. Results and their provenance go to `results/{name}/` (real data) or "
             "`runs/results/standin-<size>/` (stand-in). docs/paper_spreading_unseen.md describes the settings.")
    params = SPREADING_UNSEEN_PARAMETERS.format(rows=", ".join(spec.methods), table=name, folder=text["folder"])
    return _assemble(intro, params, "from ssml_lib.experiments.paper_spreading_unseen import run_paper_rows, "
                                    f"show_paper_rows\n\nresult = run_paper_rows(\"{name}\", globals())",
                     "show_paper_rows(result)", name.split("_")[2])


# ---------------------------------------------------------------- figure notebooks

FIGURES = {
    "fig20_21_neighbours": dict(
        intro="""# Figures 20-21: query images and their 4 nearest neighbours

From the thesis *Self-supervised Metric Learning*, Figures 20 (CUB200-2011) and 21 (CARS196): a
ResNet18 trained from scratch, then 2 randomly drawn test images, each followed by its 4 nearest test images;
the number above each image is its class. Here a green frame marks a neighbour of the query's class, red
another class (the query has a black frame).

The model is the one the scratch table row trains (`table2_cub_scratch`, `table4_cars_scratch`), with the same
parameters and run folder, so a row a table notebook already trained is loaded, not trained again.

- By default only Figure 20 (CUB) is drawn, which keeps a stand-in run to a few minutes; both figures:
  `papermill notebooks/fig20_21_neighbours.ipynb out.ipynb -y 'datasets: [cub200, cars196]'`
- Another method: `papermill notebooks/fig20_21_neighbours.ipynb out.ipynb -p method stml`
- Paper scale: `papermill notebooks/fig20_21_neighbours.ipynb out.ipynb -p data_root /data -p method spreading -y 'datasets: [cub200, cars196]'`

With no `data_root` the notebook runs on the embedded **stand-in** (convnet4 on small synthetic datasets in the
real layouts), labelled as such. Figures go to `results/figures/` with a provenance JSON (stand-in runs:
`runs/results/standin-<size>/figures/`; the recorded stand-in study's are in `results/standin/figures/`).""",
        params='''method = "spreading"  # spreading, insclr, stml, isl, mom, supervised; pretrained: untrained network
datasets = ["cub200"]  # Figure 20: cub200, Figure 21: cars196 (sop also works); both: ["cub200", "cars196"]
init = "scratch"  # "scratch" (Tables 2 and 4, the figures' setting) or "pretrained" (Tables 1 and 3)
n_queries = 2  # rows: test images drawn with `seed`
n_neighbours = 4
data_root = None  # None: the embedded stand-in; else the folder holding CUB_200_2011/ and cars196/
params_file = None  # a params file for the rows, e.g. "params/table2_cub_scratch/spreading.yaml"
standin_size = "default"  # stand-in scale: "tiny" (tests) or "default" (minutes on a 2-core CPU)
device = "auto"  # "auto", "cpu" or "cuda"
seed = 0''',
        call="from ssml_lib.experiments.neighbours import run_neighbours_notebook\n"
             "from ssml_lib.experiments.figures import show_figures\n\n"
             "result = run_neighbours_notebook(globals())"),
    "positive_mining": dict(
        intro="""# Positive mining over training

For a few training images (anchors), the positives each method mines for them at several points of training,
in the style of the ISL paper's appendix Figure 1: the anchor, then per training point its mined positives,
framed green when they share the anchor's true class and red otherwise. Below, the precision of the mined
positives (the `pos_precision` every method logs per epoch over the whole training set) for all methods on one
plot, read from the runs' `log.jsonl` files.

The methods keep only the current epoch's mining state, so each one is trained here (its table row's parameters,
in `runs/<standin|real>/positive_mining/`) and after every epoch the positives of the anchors are read with the
method's own rule and logged; what "mined" means for each method is printed with the figures. Labels are used
for display and precision only, never for training.

- Spreading and STML by default, to keep a stand-in run short; the recorded figures also show InsCLR:
  `papermill notebooks/positive_mining.ipynb out.ipynb -y 'methods: [spreading, insclr, stml]'`
- Other methods or data: `papermill notebooks/positive_mining.ipynb out.ipynb -p table table4_cars_scratch`
- Real data: add `-p data_root /data -p params_dir params/table2_cub_scratch`

With no `data_root` the notebook runs on the embedded **stand-in**, labelled as such.""",
        params='''methods = ["spreading", "stml"]  # any of spreading, insclr, stml, isl, mom (each trains here)
table = "table2_cub_scratch"  # whose training set, initialisation and backbone
n_anchors = 3  # rows: training images drawn with `seed`
n_points = 4  # training points shown (evenly spaced epochs, first and last included)
n_show = 4  # positives shown per anchor and point
params_dir = None  # a folder with <method>.yaml per method, e.g. "params/table2_cub_scratch"
method_params = {}  # parameters for one method only, e.g. {"stml": {"epochs": 4}}
data_root = None  # None: the embedded stand-in; else the folder holding the datasets' folders
standin_size = "default"  # stand-in scale: "tiny" (tests) or "default" (minutes on a 2-core CPU)
device = "auto"  # "auto", "cpu" or "cuda"
seed = 0''',
        call="from ssml_lib.experiments.positive_mining import run_positive_mining_notebook\n"
             "from ssml_lib.experiments.figures import show_figures\n\n"
             "result = run_positive_mining_notebook(globals())"),
    "extension_stml_memory": dict(
        intro="""# Beyond the thesis: STML with a cross-batch memory

The thesis closes (§6.2, "Memory Bank use") by proposing that Self-Taught metric learning keep a memory of recent
embeddings, so that each batch meets more, and harder, negatives. This notebook runs that proposal: `stml_xbm`
is STML unchanged (teacher, contextual targets, relaxed contrastive and KL losses) plus a first-in, first-out
memory of the student's recent embeddings (and the teacher's, for the targets) whose rows join the relaxed
contrastive loss as negatives, or with `-p memory_terms negatives+positives` also as soft positives
(docs/methods.md). It is an extension: **the thesis has no number for STML + memory**, and its column says so.

Each setting is a pre-trained table of the thesis (CUB, Cars, SOP, 6% GLDv2 → rOxford/rParis); STML and
`stml_xbm` are trained as that table's rows and shown beside the thesis's STML row: R@1 (mAP Medium on
rOxford/rParis) on the embedding and on the pooled backbone features, the mined-positive precision of the last
epoch (for `stml_xbm` counting memory pairs too, and the share of memory negatives of the anchor's own class),
and the precision of mined positives per epoch for both. `memory_sizes` adds a sweep of the memory's size on
the first setting. Labels are used for these diagnostics only.

- All four settings: `papermill notebooks/extension_stml_memory.ipynb out.ipynb -p settings '["table1_cub_pretrained", "table3_cars_pretrained", "table5_sop_pretrained", "table7_gldv2"]'`
- A sweep: add `-p memory_sizes '[120, 480, 1920]'`
- Paper scale: `-p data_root /data -p paper_scale True` (each row reads `params/<table>/stml.yaml` or `stml_xbm.yaml`)

With no `data_root` the notebook runs on the embedded **stand-in**, labelled as such. Its default (CUB only,
the tiny stand-in, 2 epochs a run; the memory joins after the first) runs in seconds and checks the pipeline;
`-p standin_size default` gives the minutes-long stand-in run (about 3 minutes on a 2-core CPU), and
`-p standin_epochs 8` the stand-in recipe's full length (the recorded stand-in results). `stml_xbm` joins each table's results as an extra row.""",
        params='''settings = ["table1_cub_pretrained"]  # any of table1_cub_pretrained, table3_cars_pretrained, table5_sop_pretrained, table7_gldv2
memory_sizes = []  # stml_xbm memory sizes (rows) to sweep on the first setting, e.g. [120, 480, 1920]; []: no sweep
paper_scale = False  # True (needs data_root): each row reads params/<table>/<method>.yaml
standin_epochs = 2  # stand-in runs only: epochs per run (the default stays in minutes); None: the recipe's 8
data_root = None  # None: the embedded stand-in; else the folder holding the datasets' folders
standin_size = "tiny"  # stand-in scale: "tiny" (seconds) or "default" (minutes on a 2-core CPU)
device = None  # "auto", "cpu" or "cuda"; None: "auto"
seed = None  # None: 0 (or the params file's)''',
        call="from ssml_lib.experiments.extension_stml_memory import run_stml_memory_notebook\n"
             "from ssml_lib.experiments.figures import show_figures\n\n"
             "result = run_stml_memory_notebook(globals())"),
    "table10_cost": dict(
        intro="""# Table 10: computational cost of the experiments

The thesis's Table 10 (GPU hours or days on a four-GPU NVIDIA A100 system, per method, dataset and model
initialisation) beside ours, built from the provenance record of every table row under `results/` (real data)
and `runs/results/standin-default/` (stand-in; `results/standin/` when recording): cost = the row's wall time x
its number of GPUs, in GPU hours; CPU runs are shown in CPU hours (wall time of one process) and labelled so.
Run the table notebooks first; this one trains nothing.

A projected column gives each thesis row's GPU hours at paper scale on the GPU of
`results/benchmarks/methods_cuda.json`: the paper's training steps x the measured step times (training steps
only; a projection, not a run).

Stand-in rows are labelled and written apart from real ones (`table10_cost.md` in the stand-in folder, and
`results/table10_cost.md`).""",
        params='''include = ["standin", "real"]  # which result trees to read: results/standin/ and/or results/
results_root = None  # None: ssml_lib.paths.results_dir() (results/, or $SSML_RESULTS)''',
        call="from ssml_lib.experiments.cost import run_cost_notebook\n"
             "from ssml_lib.experiments.figures import show_figures\n\n"
             "result = run_cost_notebook(globals())"),
    "paper_spreading_table1_cifar10": dict(
        intro="""# The Spreading paper's Table 1 and Figure 3: kNN accuracy on CIFAR-10

From the method paper of Spreading (Ye et al. 2019, "Unsupervised Embedding Learning via Invariant and Spreading
Instance Feature"): Table 1, the weighted kNN accuracy (k = 200) on CIFAR-10 of a ResNet18 trained for 200 epochs
without labels, and Figure 3, that accuracy after every epoch. Rows: `pretrained` (the untrained network, the
paper's RandomCNN), `spreading` (the paper's own method), `npsoftmax` and `nce` (Wu et al.'s memory bank, with
the full softmax or its NCE estimate), `triplet` and `triplet_hard` (instance triplet loss, without and with
in-batch hard negatives). The paper's DeepCluster and Exemplar CNN rows show its number only.

- More rows: `papermill notebooks/paper_spreading_table1_cifar10.ipynb out.ipynb -p method '["spreading", "npsoftmax", "triplet_hard"]'`
- Paper scale: add `-p paper_scale True -p data_root /data` (the folder holding `cifar-10-batches-py/`; each row reads `params/paper_spreading_table1_cifar10/<row>.yaml`)

With no `data_root` the notebook runs on the embedded **stand-in** (synthetic CIFAR-10 in the real layout, a
convnet4, a few CPU epochs; under a minute on 2 CPU cores), labelled as such: its numbers are not comparable with
the paper's. Results go to `runs/results/standin-<size>/` (git-ignored); real runs to `results/`.""",
        params='''method = ["pretrained", "spreading"]  # rows: pretrained (RandomCNN), spreading, npsoftmax, nce, triplet, triplet_hard
epochs = None  # None: 3 on the stand-in, the params file's 200 at paper scale
paper_scale = False  # True (needs data_root): each row reads params/paper_spreading_table1_cifar10/<row>.yaml
data_root = None  # None: the embedded stand-in; else the folder holding cifar-10-batches-py/
standin_size = None  # stand-in scale: "tiny" (tests) or "default" (under a minute on a 2-core CPU); None: "default"
device = None  # "auto", "cpu" or "cuda"; None: "auto"
seed = None  # None: 0''',
        call="from ssml_lib.experiments.paper_cifar import run_paper_cifar_notebook\n"
             "from ssml_lib.experiments.figures import show_figures\n\n"
             "result = run_paper_cifar_notebook(globals())"),
    "paper_isl_table1": dict(
        intro="""# The ISL paper's Table 1: kNN and linear-classifier accuracy on CIFAR-10, CIFAR-100 and SVHN

From the method paper of ISL (Wang et al., ICCV 2021, "Instance Similarity Learning for Unsupervised Feature
Representation"): Table 1, the top-1 accuracy of AlexNet, ResNet18 and ResNet50 trained without labels, by the
weighted kNN classifier on the FC (128-d embedding) features and by a linear classifier on the conv5 features.
One run covers one dataset and one architecture. Rows: `pretrained` (the untrained network, the paper's Random),
`npsoftmax` (Wu et al.'s memory-bank softmax, the paper's Instance), `isl_no_hpe` (ISL without the hard-positive
enhancement term, "ISL w/o HPE") and `isl`. Our copy of the paper keeps the numbers of its two ISL rows only.

- More rows, another set: `papermill notebooks/paper_isl_table1.ipynb out.ipynb -p method '["pretrained", "npsoftmax", "isl_no_hpe", "isl"]' -p dataset svhn -p standin_size default`
- Paper scale: add `-p paper_scale True -p data_root /data -p backbone resnet18` (each row reads `params/paper_isl_table1/<row>.yaml`)

With no `data_root` the notebook runs on the embedded **stand-in** (a synthetic set in the real layout, a convnet4,
a few CPU epochs; by default the tiny stand-in, well under a minute on 2 CPU cores), labelled as such: its numbers
are not comparable with the paper's. Results go to `runs/results/standin-<size>/` (git-ignored); real runs to
`results/`.""",
        params='''method = ["pretrained", "isl"]  # rows: pretrained (Random), npsoftmax (Instance), isl_no_hpe, isl
dataset = "cifar10"  # cifar10, cifar100 or svhn
backbone = "alexnet"  # the paper's architecture (its rows; the network at paper scale): alexnet, resnet18, resnet50
network = None  # None: the architecture's CIFAR network at paper scale, convnet4 on the stand-in; or a backbone name
epochs = None  # per ISL round; None: 2 on the stand-in (1 at "tiny"), the params file's 200 at paper scale
paper_scale = False  # True (needs data_root): each row reads params/paper_isl_table1/<row>.yaml
data_root = None  # None: the embedded stand-in; else the folder holding the dataset's torchvision files
standin_size = "tiny"  # stand-in scale: "tiny" (seconds) or "default" (minutes a row on a 2-core CPU)
device = None  # "auto", "cpu" or "cuda"; None: "auto"
seed = None  # None: 0''',
        call="from ssml_lib.experiments.paper_isl import run_paper_isl_notebook\n"
             "from ssml_lib.experiments.figures import show_figures\n\n"
             "result = run_paper_isl_notebook(globals())"),
}

_ABLATION_PARAMS = '''row = "{row}"  # the row: {rows}
data_root = None  # None: the embedded stand-in; else the folder holding gldv2/, roxford5k/, rparis6k/
params_file = None  # real data: "params/{table}/<row>.yaml" (the paper's scale; set row to the file's row)
standin_size = "tiny"  # stand-in scale: "tiny" (seconds; tests) or "default" (minutes on a 2-core CPU)
device = None  # "auto", "cpu" or "cuda"; None: the params file's, else "auto"
seed = None  # None: the params file's, else 0'''
_ABLATION_RUN = """

- Another row: `papermill notebooks/{table}.ipynb out.ipynb -p row {other}`
- Every row: `python -m ssml_lib.experiments.paper_insclr_ablations_run {table}` (`--standin-size tiny`, `--rows a,b`)
- Paper scale: `papermill notebooks/{table}.ipynb out.ipynb -p row {other} -p params_file params/{table}/{other}.yaml -p data_root /data`,
  or every row: `python -m ssml_lib.experiments.paper_insclr_ablations_run {table} --data-root /data`

Each row is InsCLR with the settings the row names (its switches are printed with the results and recorded in
the provenance; docs/paper_insclr_ablations.md maps every row). With no `data_root` the notebook runs on the
embedded **stand-in** (synthetic GLDv2, rOxford5k and rParis6k in the real layouts, a convnet4 at 48 px, a
few CPU steps a cycle; by default the tiny size, seconds a row), labelled as such: its numbers check the
pipeline and are **not comparable** with the paper's. Stand-in results go to `runs/results/standin-<size>/`
(git-ignored), real ones to `results/`, each with its provenance."""


def _ablation(table: str, title: str, row: str, other: str) -> dict:
    from ssml_lib.experiments.paper_insclr_ablations import ROWS

    rows = ", ".join(ROWS[table])
    return dict(intro=title + _ABLATION_RUN.format(table=table, other=other),
                params=_ABLATION_PARAMS.format(row=row, rows=rows, table=table),
                call="from ssml_lib.experiments.paper_insclr_ablations_run import run_ablation_notebook, show_ablation\n\n"
                     f'result = run_ablation_notebook("{table}", globals())',
                show="show_ablation(result)")


FIGURES.update({
    "paper_insclr_table1_ablation": _ablation("paper_insclr_table1_ablation", """# The InsCLR paper's Table 1: ablation of its components

From the InsCLR paper (Deng et al., AAAI 2022), Table 1: a ResNet-101 with GeM pooling trained on GLDv2 without
labels, mAP on rOxford5k and rParis6k (Medium, Hard). Rows: `pretrained` (ImageNet, no training), `a` (the
*nn* positives of each training tuple, no memory), `b` (+ a memory of random negatives), `c` (+ in-batch
selection on the unaugmented similarity), `d_anchor` (memory positives mined from the anchor alone) and `d` (the
full method: memory positives mined with the tuple's query set). The paper's PCA and supervised rows show its
numbers only.""", "a", "d"),
    "paper_insclr_table2_memory_mining": _ablation("paper_insclr_table2_memory_mining", """# The InsCLR paper's Table 2: mining positives in the memory

From the InsCLR paper (Deng et al., AAAI 2022), Table 2: the full method (Table 1's D) with other rules for
mining positives in the memory: the aggregation of a candidate's similarities to the query set (`avg`, `max`),
the selection (`topk`: the 5 best a round; `threshold`: every candidate scoring >= 0.6; `spa`: only
similarities >= 0.6 are aggregated) and the rounds (two unless named; `1x`, `4x`).""", "avg_topk_1x", "max_topk"),
})


FIGURES.update({
    "paper_spreading_fig4_retrievals": dict(
        intro="""# The Spreading paper's Figure 4: 4-NN retrievals of CUB queries over training

From the Spreading paper (Ye et al., CVPR 2019), Figure 4: a few CUB200 test queries (unseen classes) and their
4 nearest test images by cosine at different training epochs; a green frame marks a neighbour of the query's
class, red another class. The model is the `spreading` row of the paper's Table 3
(`notebooks/paper_spreading_table3_cub.ipynb`: ImageNet Inception-V1 with a new 128-d FC, the nearest instance
as positive half the time), trained here with the retrievals logged after every epoch; epoch 0 is the network
before training. Each query gets one figure, one row per epoch shown.

- More queries and epochs: `papermill notebooks/paper_spreading_fig4_retrievals.ipynb out.ipynb -p n_queries 4 -p epochs 6 -p n_points 4`
- The larger stand-in: add `-p standin_size default`
- Paper scale: `papermill notebooks/paper_spreading_fig4_retrievals.ipynb out.ipynb -p params_file params/paper_spreading_table3_cub/spreading.yaml -p data_root /data -p epochs None`

With no `data_root` the notebook runs on the embedded **stand-in** (synthetic CUB in the real layout, a convnet4
at 48 px with the cached stand-in "ImageNet" start; by default the tiny size and 2 epochs, seconds on a CPU),
labelled as such. Figures and their provenance go to `runs/results/standin-<size>/figures/` (stand-in) or
`results/figures/` (real data).""",
        params='''method = "spreading"  # the Table 3 row trained: spreading (nce and mom also work)
n_queries = 2  # test queries drawn with `seed` (one figure each)
n_neighbours = 4
n_points = 3  # epochs shown: evenly spaced from 0 (before training) to the last
epochs = 2  # training length; None: the stand-in recipe's or the params file's
data_root = None  # None: the embedded stand-in; else the folder holding CUB_200_2011/
params_file = None  # e.g. "params/paper_spreading_table3_cub/spreading.yaml" (real data)
standin_size = "tiny"  # stand-in scale: "tiny" (seconds; the default here) or "default" (minutes on a 2-core CPU)
device = None  # "auto", "cpu" or "cuda"; None: the params file's, else "auto"
seed = None  # None: the params file's, else 0''',
        call="from ssml_lib.experiments.paper_spreading_fig4 import run_retrievals_notebook\n"
             "from ssml_lib.experiments.figures import show_figures\n\n"
             "result = run_retrievals_notebook(globals())"),
})

def figure_notebook(name: str) -> nbformat.NotebookNode:
    spec = FIGURES[name]
    return _assemble(spec["intro"], spec["params"], spec["call"], spec.get("show", "show_figures(result)"),
                     name.split("_")[0])


def _assemble(intro: str, params: str, call: str, show: str, id_prefix: str) -> nbformat.NotebookNode:
    """The four cells every notebook has: intro, parameters (tagged for papermill), the call, the display."""
    cells = [
        nbformat.v4.new_markdown_cell(intro),
        nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(call),
        nbformat.v4.new_code_cell(show),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"{id_prefix}-{i}"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    return nb


def render(name: str) -> str:
    nb = figure_notebook(name) if name in FIGURES else paper_notebook(name) if name in PAPER_TABLES else notebook(name)
    return nbformat.writes(nb) + "\n"


NOTEBOOKS = tuple(TABLES) + tuple(PAPER_TABLES) + tuple(FIGURES)


def content(nb: nbformat.NotebookNode) -> dict:
    """What the drift check compares (see the module docstring): no display metadata, counts or UI state."""
    def cell(c) -> dict:
        out = {"type": c.cell_type, "source": c.source, "tags": sorted(c.get("metadata", {}).get("tags", []))}
        if c.cell_type == "code":
            out["outputs"] = len(c.get("outputs", []))
        return out
    return {"nbformat": nb.nbformat, "kernel": nb.metadata.get("kernelspec", {}).get("name"),
            "cells": [cell(c) for c in nb.cells]}


def drift(path: Path, expected: nbformat.NotebookNode) -> Optional[str]:
    """Why the notebook at ``path`` differs in content from ``expected``; None when it does not."""
    if not path.is_file():
        return "missing"
    try:
        have = content(nbformat.reads(path.read_text(encoding="utf-8"), as_version=4))
    except Exception as exc:  # noqa: BLE001 - any unreadable file is drift, reported with its reason
        return f"not a readable notebook ({type(exc).__name__}: {exc})"
    want = content(expected)
    if have == want:
        return None
    if any(c.get("outputs") for c in have["cells"]):
        return "holds outputs from a run (clear them, e.g. JupyterLab's Edit > Clear Outputs of All Cells, " \
               "or regenerate; work on copies from --out runs/lab)"
    if have["kernel"] != want["kernel"]:
        return f"kernel {have['kernel']!r}, expected {want['kernel']!r}"
    if len(have["cells"]) != len(want["cells"]):
        return f"{len(have['cells'])} cells, expected {len(want['cells'])}"
    for i, (h, w) in enumerate(zip(have["cells"], want["cells"])):
        if h != w:
            what = ", ".join(k for k in w if h.get(k) != w[k])
            return f"cell {i} differs ({what})"
    return "nbformat version differs"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if a committed notebook's content has drifted")
    parser.add_argument("--out", type=Path, default=REPO / "notebooks",
                        help="folder to write (or, with --check, to check); default notebooks/")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        path = args.out / f"{name}.ipynb"
        if args.check:
            why = drift(path, nbformat.reads(render(name), as_version=4))
            if why is not None:
                stale.append(f"{_shown(path)}: {why}")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(name))
    if stale:
        print("notebooks out of date with tools/make_notebooks.py (run it and commit):", *stale, sep="\n  ")
        return 1
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    raise SystemExit(main())
