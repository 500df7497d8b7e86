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
import json
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
    "paper_insclr_table6_instre": dict(
        folders="instre/ (gnd_instre.mat, train.txt and the INSTRE-S1/, INSTRE-S2/, INSTRE-M/ images)",
        whitening="None", train="INSTRE (its training list, no labels)",
        what="INSTRE mAP with the query / database split of Iscen et al. (queries cropped to their box, the "
             "database images of the query's object positive)",
        rows="The paper's \"InsCLR w/o P.M. (nn = 1)\" row and the rows of Iscen et al. show the paper's numbers "
             "only."),
}


def paper_notebook(name: str) -> nbformat.NotebookNode:
    if name in SPREADING_UNSEEN:
        return spreading_unseen_notebook(name)
    spec, text = PAPER_TABLES[name], PAPER_INTROS[name]
    intro = (f"# {spec.caption}\n\n"
             f"Reproduces {text['what']}, for an ImageNet pre-trained {spec.backbone} (GeM), before (`pretrained`) "
             f"and after InsCLR training on {text.get('train', 'GLDv2')} (`insclr`). The paper's numbers beside ours come from "
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
    "paper_insclr_fig4_inbatch_selection": dict(intro="""# The InsCLR paper's Figure 4: positive selection in the mini-batch

From the InsCLR paper (Deng et al., AAAI 2022), Figure 4: which of a training tuple's N_b pool neighbours stay
positives. Rules: `nn` (all of them), a threshold T_b on the similarity of the augmented images (`augmented`),
of the unaugmented images (`noaug`, the paper's choice), of the unaugmented similarity divided by the tuple's
largest (`relative`) and of unaugmented images averaged over three scales (`multiscale`); then N_b in 1, 3, 5, 7.
mAP (Medium) on rOxford5k (left) and rParis6k (right) against the swept value, one line per rule. Every point
is a training run of InsCLR with Table 1 row C's settings and the point's rule, T_b and N_b (`nn`: row B's).

- The paper's threshold sweep: `python -m ssml_lib.experiments.paper_insclr_fig4_run` (`--standin-size tiny`; minutes a point)
- Its N_b sweep: `python -m ssml_lib.experiments.paper_insclr_fig4_run --sweep num_neighbors`
- Paper scale: add `--data-root /data` (each point reads `params/paper_insclr_fig4_inbatch_selection/sweep.yaml`), or
  `papermill notebooks/paper_insclr_fig4_inbatch_selection.ipynb out.ipynb -p params_file params/paper_insclr_fig4_inbatch_selection/sweep.yaml -p data_root /data`

With no `data_root` the notebook runs on the embedded **stand-in** (synthetic GLDv2, rOxford5k and rParis6k in
the real layouts, a convnet4 at 48 px, one base cycle of a few CPU steps a point; by default the tiny size and
two points), labelled as such: its numbers check the pipeline and are **not comparable** with the paper's.
docs/paper_insclr_ablations.md says what the stand-in shows and where the paper is silent.""",
        params="""sweep = "threshold"  # x axis: "threshold" (T_b; nn drawn flat) or "num_neighbors" (N_b)
rules = ["nn", "noaug"]  # some of: nn, augmented, noaug, relative, multiscale
thresholds = [0.95]  # T_b values (paper scale, our choice of ticks: [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8])
num_neighbors = [3]  # N_b values (the paper's N_b sweep: [1, 3, 5, 7] with thresholds [0.65])
data_root = None  # None: the embedded stand-in; else the folder holding gldv2/, roxford5k/, rparis6k/
params_file = None  # real data: "params/paper_insclr_fig4_inbatch_selection/sweep.yaml" (the paper's scale)
standin_size = "tiny"  # stand-in scale: "tiny" (seconds a point; tests) or "default" (minutes a point)
device = None  # "auto", "cpu" or "cuda"; None: the params file's, else "auto"
seed = None  # None: the params file's, else 0""",
        call="""from ssml_lib.experiments.paper_insclr_fig4_run import run_fig4_notebook, show_fig4

result = run_fig4_notebook(globals())""",
        show="show_fig4(result)"),
    "paper_insclr_mining_precision": dict(intro="""# The InsCLR paper's mining precision along training

From the InsCLR paper (Deng et al., AAAI 2022), §4.2 "Mining accuracy at training" (its plots are in its
supplement): the precision of positive mining, true positives mined / all mined pseudo positives, along
training, for the positives kept in the mini-batch and for those mined in the memory bank. A mined positive is
true when it shares its anchor's ground-truth class; labels serve this record only and never reach the loss.
The run is the full method (Table 1 row D's settings) with `precision_log_every` set: each cycle's `log.jsonl`
holds the counts per window of steps, and the curves are read back from those logs.

- Paper scale: `papermill notebooks/paper_insclr_mining_precision.ipynb out.ipynb -p params_file params/paper_insclr_table1_ablation/d.yaml -p data_root /data`
  (a point every 1000 steps unless `-p precision_log_every` says otherwise)

With no `data_root` the notebook runs on the embedded **stand-in** (synthetic GLDv2 in the real layout, a
convnet4 at 48 px, one base cycle then the impr cycle, a point a step; by default the tiny size), labelled as
such: its numbers check the pipeline and are **not comparable** with the paper's.""",
        params="""data_root = None  # None: the embedded stand-in; else the folder holding gldv2/, roxford5k/, rparis6k/
params_file = None  # real data: "params/paper_insclr_table1_ablation/d.yaml" (the full method at the paper's scale)
precision_log_every = None  # steps per precision point; None: 1 on the stand-in, 1000 on real data
standin_size = "tiny"  # stand-in scale: "tiny" (seconds; tests) or "default" (minutes on a 2-core CPU)
device = None  # "auto", "cpu" or "cuda"; None: the params file's, else "auto"
seed = None  # None: the params file's, else 0""",
        call="""from ssml_lib.experiments.paper_insclr_mining_precision import run_mining_precision_notebook, show_mining_precision

result = run_mining_precision_notebook(globals())""",
        show="show_mining_precision(result)"),
})


_SPREADING_ABLATION = """

- Every row: `papermill notebooks/{table}.ipynb out.ipynb -p rows '{every}' -p standin_size default`
- Paper scale: add `-p paper_scale True -p data_root /data` (the folder holding `cifar-10-batches-py/`; each row reads `params/{table}/<row>.yaml`: the Table 1 recipe and the row's switch)

Every row is the Table 1 `spreading` row with one switch set (docs/paper_tables.md). With no `data_root` the
notebook runs on the embedded **stand-in** (synthetic CIFAR-10 in the real layout, a convnet4; by default the
tiny size and two rows, seconds), labelled as such: its numbers are not comparable with the paper's.
`-p standin_size default` runs the stand-in recipe (3 epochs, under a minute a row on a shared 2-core CPU).
Results go to `runs/results/standin-<size>/` (git-ignored); real runs to `results/`."""


def _spreading_ablation(table: str, title: str, default: list) -> dict:
    from ssml_lib.experiments.paper_spreading_ablations import TABLES as SPREADING_ABLATIONS

    every = json.dumps(list(SPREADING_ABLATIONS[table].rows))
    return dict(intro=title + _SPREADING_ABLATION.format(table=table, every=every),
                params=f"""rows = {json.dumps(default)}  # any of {", ".join(SPREADING_ABLATIONS[table].rows)}
epochs = None  # None: 3 on the stand-in (1 at "tiny"), the params file's 200 at paper scale
paper_scale = False  # True (needs data_root): each row reads params/{table}/<row>.yaml
data_root = None  # None: the embedded stand-in; else the folder holding cifar-10-batches-py/
standin_size = "tiny"  # stand-in scale: "tiny" (seconds) or "default" (under a minute a row, 2-core CPU)
device = None  # "auto", "cpu" or "cuda"; None: "auto"
seed = None  # None: 0""",
                call="from ssml_lib.experiments.paper_spreading_ablations import run_paper_spreading_ablation_notebook\n"
                     "from ssml_lib.experiments.figures import show_figures\n\n"
                     f'result = run_paper_spreading_ablation_notebook("{table}", globals())')


FIGURES.update({
    "paper_spreading_table7_augmentation": _spreading_ablation("paper_spreading_table7_augmentation", """# The Spreading paper's Table 7: leaving out one augmentation at a time (CIFAR-10 kNN)

From the method paper of Spreading (Ye et al. 2019), Sec. 4.3, Table 7: the weighted kNN accuracy on CIFAR-10 (the
Table 1 setting: ResNet18, 200 epochs, k = 200) of Spreading trained with all four augmentations (`full`) and
without one of them: `no_crop` (RandomResizedCrop, the paper's "w/o R"), `no_grey` (RandomGrayscale, "w/o G"),
`no_jitter` (ColorJitter, "w/o C") and `no_flip` (RandomHorizontalFlip, "w/o F").""", ["full", "no_crop"]),
    "paper_spreading_table8_sampling": _spreading_ablation("paper_spreading_table8_sampling", """# The Spreading paper's Table 8: no augmentation, hard and easy negatives (CIFAR-10 kNN)

From the method paper of Spreading (Ye et al. 2019), Sec. 4.3, Table 8: the weighted kNN accuracy on CIFAR-10 (the
Table 1 setting) of Spreading as it is (`full`), trained without any augmentation (`no_da`, the paper's "No DA"),
and with only the most (`hard`) or least (`easy`) similar half of each anchor's in-batch negatives.""",
                                                               ["full", "easy"]),
})


# The ISL paper's figures (ssml_lib.experiments.paper_isl_fig3, paper_isl_fig4, paper_isl_appendix)
_ISL_FIG_STANDIN = """With no `data_root` the notebook runs on the embedded **stand-in** (synthetic CIFAR-10 in the real layout, a
convnet4, a few CPU epochs a round; by default the tiny size, seconds), labelled as such: its numbers check the
pipeline and are **not comparable** with the paper's. Figures, a CSV and the provenance go to
`runs/results/standin-<size>/figures/` (git-ignored); real runs to `results/figures/`."""
_ISL_FIG_COMMON = '''network = None  # None: convnet4 on the stand-in, the params file's AlexNet (alexnet_cifar) at paper scale
epochs = None  # backbone epochs per ISL round; None: 1 at "tiny", 2 at "default", the params file's 200
paper_scale = False  # True (needs data_root): params/{name}/isl.yaml
data_root = None  # None: the embedded stand-in; else the folder holding cifar-10-batches-py/
standin_size = "tiny"  # stand-in scale: "tiny" (seconds) or "default" (minutes on a 2-core CPU)
device = None  # "auto", "cpu" or "cuda"; None: "auto"
seed = None  # None: 0'''
FIGURES.update({
    "paper_isl_fig3_mining_precision": dict(
        intro="""# The ISL paper's Figure 3: precision of the mined positives, geodesic vs Euclidean

From the method paper of ISL (Wang et al., ICCV 2021), Sec. 4.2.1 and Figure 3: on CIFAR-10, the precision of
the mined positive sets (the fraction of an anchor's positives from its class, averaged over the anchors) per
epoch of training, for two set sizes, when the positives are chosen by geodesic similarity (ISL: the nearest to
the GAN's proxy) or by Euclidean distance (the nearest to the anchor). The paper says both are alike for the
small set and geodesic is clearly better for the large one; its values are not in its text, so no paper
numbers are shown. The sizes are a setting (`set_sizes`): the paper's are lost in our copy of its text.

- Other sizes: `papermill notebooks/paper_isl_fig3_mining_precision.ipynb out.ipynb -y 'set_sizes: [5, 20]'`
- Paper scale: add `-p paper_scale True -p data_root /data` (reads `params/paper_isl_fig3_mining_precision/isl.yaml`)

""" + _ISL_FIG_STANDIN,
        params="set_sizes = None  # positive-set sizes; None: [3, 10] on the stand-in, the params file's at paper scale\n"
               + _ISL_FIG_COMMON.format(name="paper_isl_fig3_mining_precision"),
        call="from ssml_lib.experiments.paper_isl_fig3 import run_paper_isl_fig3_notebook\n"
             "from ssml_lib.experiments.figures import show_figures\n\n"
             "result = run_paper_isl_fig3_notebook(globals())"),
    "paper_isl_fig4_hyperparameters": dict(
        intro="""# The ISL paper's Figure 4: the effect of ISL's hyper-parameters

From the method paper of ISL (Wang et al., ICCV 2021), Sec. 4.2.2 and Figure 4: the weighted kNN top-1 accuracy
on CIFAR-10 against (a) the confidence threshold (`isl_gate`), (b) the region size R (`isl_radius`, a cosine:
larger R, smaller region) and (c) the sampling times (`isl_sampling_times`: triplets drawn per anchor, the most
confident proxy kept), one swept at a time, the others fixed. Each point is one ISL training; the paper's
statements are shown (its values are not in its text). Each point also reports how many links were mined, which
says whether the swept value could change anything.

- One sweep, more points: `papermill notebooks/paper_isl_fig4_hyperparameters.ipynb out.ipynb -p sweeps threshold -y 'threshold_values: [0.1, 0.3, 0.5, 0.7]'`
- Paper scale (every sweep with the params file's points): add `-p paper_scale True -p data_root /data`

""" + _ISL_FIG_STANDIN,
        params='''sweeps = None  # None: all three; or one or a list of: threshold, region_size, sampling_times
threshold_values = None  # None: [0.3, 0.5] on the stand-in, the params file's at paper scale
region_size_values = None  # None: [0.6, 0.8] on the stand-in, the params file's at paper scale
sampling_times_values = None  # None: [1, 5] on the stand-in, the params file's at paper scale
''' + _ISL_FIG_COMMON.format(name="paper_isl_fig4_hyperparameters"),
        call="from ssml_lib.experiments.paper_isl_fig4 import run_paper_isl_fig4_notebook\n"
             "from ssml_lib.experiments.figures import show_figures\n\n"
             "result = run_paper_isl_fig4_notebook(globals())"),
    "paper_isl_appendix_mined_positives": dict(
        intro="""# The ISL paper's appendix figure: the positives ISL mines per round

From the supplementary material of the ISL paper (Wang et al., ICCV 2021), Appendix C, Figure 1: for a few
anchors, the positives ISL mines in successive rounds of training, framed green when they share the anchor's
class and red otherwise (the thesis's positive-mining figure, drawn from ISL's affinity sets A(i) on CIFAR-10).
Above ISL's row, where the paper shows LA (Zhuang et al. 2019, not in ssml), each anchor's nearest bank
entries at the same point of the same training: the conventional Euclidean rule, not LA.

- More anchors: `papermill notebooks/paper_isl_appendix_mined_positives.ipynb out.ipynb -p n_anchors 6`
- Paper scale: add `-p paper_scale True -p data_root /data` (reads `params/paper_isl_appendix_mined_positives/isl.yaml`)

""" + _ISL_FIG_STANDIN,
        params='''n_anchors = None  # anchors drawn with `seed`; None: 3 (the params file's at paper scale)
n_show = None  # positives shown per round; None: 4
''' + _ISL_FIG_COMMON.format(name="paper_isl_appendix_mined_positives"),
        call="from ssml_lib.experiments.paper_isl_appendix import run_paper_isl_appendix_notebook\n"
             "from ssml_lib.experiments.figures import show_figures\n\n"
             "result = run_paper_isl_appendix_notebook(globals())"),
})


FIGURES.update({
    "paper_spreading_table2_stl10": dict(
        intro="""# The Spreading paper's Table 2: linear and kNN classifiers on STL-10

From the method paper of Spreading (Ye et al. 2019, "Unsupervised Embedding Learning via Invariant and Spreading
Instance Feature"): Table 2, the STL-10 test accuracy of a linear classifier and of the weighted kNN classifier
(k = 200) on the 128-d embedding of a ResNet18 trained without labels, on the 5,000 labelled training images
(`train_split` "train", the paper's 5K) or on those and the 100,000 unlabelled ones ("train+unlabeled", 105K).
Both classifiers use the labelled training images. Rows: `pretrained` (the untrained network, the paper's
RandomCNN), `spreading` (the paper's own method), `npsoftmax` and `nce` (Wu et al.'s memory bank). DeepCluster and
the rows the paper takes from another paper show its numbers only.

- The 105K row: `papermill notebooks/paper_spreading_table2_stl10.ipynb out.ipynb -p method '["spreading"]' -p train_split train+unlabeled`
- Paper scale: add `-p paper_scale True -p data_root /data` (the folder holding `stl10_binary/`; each row reads `params/paper_spreading_table2_stl10/<row>.yaml`)

With no `data_root` the notebook runs on the embedded **stand-in** (synthetic STL-10 in the real layout, a convnet4
at 32 px, a few CPU epochs; by default the tiny stand-in, seconds), labelled as such: its numbers are not
comparable with the paper's. Results go to `runs/results/standin-<size>/` (git-ignored); real runs to `results/`.""",
        params='''method = ["pretrained", "spreading"]  # rows: pretrained (RandomCNN), spreading, npsoftmax, nce
train_split = "train"  # what the rows train on: "train" (the paper's 5K) or "train+unlabeled" (105K)
epochs = None  # None: 3 on the stand-in (1 at "tiny"), the params file's 200 at paper scale
paper_scale = False  # True (needs data_root): each row reads params/paper_spreading_table2_stl10/<row>.yaml
data_root = None  # None: the embedded stand-in; else the folder holding stl10_binary/
standin_size = "tiny"  # stand-in scale: "tiny" (seconds) or "default" (minutes a row on a 2-core CPU)
device = None  # "auto", "cpu" or "cuda"; None: "auto"
seed = None  # None: 0''',
        call="from ssml_lib.experiments.paper_stl10 import run_paper_stl10_notebook\n"
             "from ssml_lib.experiments.figures import show_figures\n\n"
             "result = run_paper_stl10_notebook(globals())"),
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
