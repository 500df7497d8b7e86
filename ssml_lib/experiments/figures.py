"""Image-grid figures in the thesis's style, and what the figure notebooks share.

Pure plotting (no data, no models; tests inspect the returned Figure):

- :func:`plot_neighbours`: Figures 20-21 of the thesis: each row a query and its nearest neighbours, the class
  number above every image, a green frame where a neighbour's class equals the query's, red otherwise.
- :func:`plot_mined_positives`: the ISL appendix's Figure 1 layout: an anchor, then the positives a method
  mined for it at several points of training, framed green/red by true class.
- :func:`plot_precision_curves`: precision of mined positives per epoch, one line per method.

Frames are ``Rectangle`` patches in axes coordinates whose ``label`` is ``'query'``, ``'match'`` or
``'mismatch'``. Figures are built with ``matplotlib.figure.Figure`` (no pyplot state), saved atomically as
PNG, and shown in notebooks from the saved file. The notebook pipelines live in :mod:`.neighbours`,
:mod:`.positive_mining` and :mod:`.cost`.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..errors import ConfigError
from ..io import atomic_write_bytes

MATCH_COLOUR, MISMATCH_COLOUR, QUERY_COLOUR, REJECTED_COLOUR = "green", "red", "black", "0.6"
DISPLAY_NAMES = {"spreading": "Spreading", "stml": "Self-Taught (STML)", "insclr": "InsCLR", "isl": "ISL",
                 "mom": "Mining on Manifolds", "supervised": "Supervised", "pretrained": "pre-trained network",
                 "stml_xbm": "STML + memory (extension)"}
FRAME_MEANINGS = {"query": "query / anchor", "match": "same class", "mismatch": "another class",
                  "rejected": "candidate turned down by the method's selection"}
STANDIN_LABEL = "STAND-IN DATA (synthetic; not comparable with the paper)"
_FRAME_WIDTH = 4.0


def _as_array(image: Any) -> np.ndarray:
    """PIL image, HxWx3 array (uint8 or floats in [0, 1]) or CHW tensor -> HxWx3 array imshow accepts."""
    if hasattr(image, "detach"):  # torch tensor, CHW
        image = image.detach().cpu().numpy()
        if image.ndim == 3 and image.shape[0] in (1, 3):
            image = np.moveaxis(image, 0, -1)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ConfigError(f"an image must be a PIL image, an HxWx3 array or a 3xHxW tensor, got shape "
                          f"{arr.shape}. Fix: pass dataset.load_image(i) or the decoded array.")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr if arr.dtype == np.uint8 else np.clip(arr, 0.0, 1.0)


def _framed_image(ax, image: Any, label: Any, kind: str) -> None:
    """``image`` in ``ax`` with its class number above and a frame of the ``kind``'s colour."""
    colour = {"query": QUERY_COLOUR, "match": MATCH_COLOUR, "mismatch": MISMATCH_COLOUR,
              "rejected": REJECTED_COLOUR}[kind]
    ax.imshow(_as_array(image))
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(str(label), fontsize=9, pad=3)
    ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False, edgecolor=colour,
                           linewidth=_FRAME_WIDTH, clip_on=False, label=kind))


def frame_legend(fig: Figure, kinds: Sequence[str], *, y: float = 0.0) -> None:
    """A legend of the frame colours used, below the panels."""
    colours = {"query": QUERY_COLOUR, "match": MATCH_COLOUR, "mismatch": MISMATCH_COLOUR, "rejected": REJECTED_COLOUR}
    handles = [Rectangle((0, 0), 1, 1, fill=False, edgecolor=colours[k], linewidth=2.5, label=FRAME_MEANINGS[k])
               for k in kinds]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, y), handlelength=1.2)


def _blank(ax, text: str = "") -> None:
    ax.set_axis_off()
    if text:
        ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, color="grey", transform=ax.transAxes)


def _check_rows(name: str, images: Sequence, labels: Sequence) -> None:
    if len(images) != len(labels):
        raise ConfigError(f"{name}: {len(images)} image rows but {len(labels)} label rows. Fix: give one label per "
                          "image, in the same nesting.")


def plot_neighbours(query_images: Sequence, neighbour_images: Sequence[Sequence], query_labels: Sequence,
                    neighbour_labels: Sequence[Sequence], *, title: Optional[str] = None,
                    cell_inches: float = 1.6, row_names: Optional[Sequence[str]] = None) -> Figure:
    """One row per query: the query (black frame), then its neighbours, green where the neighbour's class
    equals the query's and red otherwise; each image has its class number above it. ``row_names``: a label
    left of each row (e.g. the training epoch when the same query is shown at several points)."""
    _check_rows("plot_neighbours queries", query_images, query_labels)
    _check_rows("plot_neighbours neighbours", neighbour_images, neighbour_labels)
    if len(query_images) != len(neighbour_images) or not len(query_images):
        raise ConfigError(f"plot_neighbours needs one neighbour row per query and at least one query, got "
                          f"{len(query_images)} queries and {len(neighbour_images)} rows.")
    cols = 1 + max(len(row) for row in neighbour_images)
    fig = Figure(figsize=(cell_inches * cols, cell_inches * 1.2 * len(query_images) + (0.5 if title else 0)))
    axes = fig.subplots(len(query_images), cols, squeeze=False)
    for r, (q_img, q_lab, n_imgs, n_labs) in enumerate(zip(query_images, query_labels, neighbour_images,
                                                           neighbour_labels)):
        _check_rows(f"plot_neighbours row {r}", n_imgs, n_labs)
        _framed_image(axes[r, 0], q_img, q_lab, "query")
        if row_names is not None:
            axes[r, 0].set_ylabel(str(row_names[r]), fontsize=9, labelpad=8)
        for c in range(1, cols):
            if c - 1 < len(n_imgs):
                lab = n_labs[c - 1]
                _framed_image(axes[r, c], n_imgs[c - 1], lab, "match" if lab == q_lab else "mismatch")
            else:
                _blank(axes[r, c])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(h_pad=1.2, w_pad=0.8, rect=(0, 0.07, 1, 1))  # room for the frames and the legend
    frame_legend(fig, ["query", "match", "mismatch"])
    return fig


def plot_mined_positives(anchor_images: Sequence, anchor_labels: Sequence,
                         positive_images: Sequence[Sequence[Sequence]],
                         positive_labels: Sequence[Sequence[Sequence]], *, point_names: Sequence[str],
                         row_names: Optional[Sequence[str]] = None, n_show: int = 4,
                         title: Optional[str] = None, cell_inches: float = 1.1,
                         rejected_images: Optional[Sequence[Sequence[Sequence]]] = None,
                         rejected_labels: Optional[Sequence[Sequence[Sequence]]] = None) -> Figure:
    """Rows: anchors (black frame). Column groups: training points (``point_names``); in each group the first
    ``n_show`` positives mined for the row's anchor at that point, green if of the anchor's class, else red,
    then (grey frames) candidates the method's selection turned down, when given.
    ``positive_images[row][point]`` is a list of images (empty: nothing mined, shown as 'none')."""
    _check_rows("plot_mined_positives anchors", anchor_images, anchor_labels)
    _check_rows("plot_mined_positives positives", positive_images, positive_labels)
    n_rows, n_points = len(anchor_images), len(point_names)
    if not n_rows or len(positive_images) != n_rows or n_show < 1:
        raise ConfigError(f"plot_mined_positives needs one positives row per anchor (got {n_rows} anchors, "
                          f"{len(positive_images)} rows) and n_show >= 1 (got {n_show}).")
    # a narrow spacer column before every group keeps the training points apart; a header band holds the title
    # and the point names
    ratios = [1.0] + [0.25, *([1.0] * n_show)] * n_points
    header, footer = 0.55 + (0.3 if title else 0.0), 0.35
    height = cell_inches * 1.3 * n_rows + header + footer
    used = {"query"}
    fig = Figure(figsize=(cell_inches * sum(ratios) * 1.1 + (1.2 if row_names else 0.2), height))
    grid = fig.add_gridspec(n_rows, len(ratios), width_ratios=ratios, wspace=0.1, hspace=0.35,
                            top=1.0 - header / height, bottom=footer / height, left=0.02 + (0.1 if row_names else 0.0),
                            right=0.99)
    for r in range(n_rows):
        if len(positive_images[r]) != n_points or len(positive_labels[r]) != n_points:
            raise ConfigError(f"row {r} has {len(positive_images[r])} training points but point_names has "
                              f"{n_points}. Fix: one positives list per point.")
        ax = fig.add_subplot(grid[r, 0])
        _framed_image(ax, anchor_images[r], anchor_labels[r], "query")
        if row_names:
            ax.set_ylabel(row_names[r], fontsize=8, rotation=0, ha="right", va="center", labelpad=8)
        for p in range(n_points):
            first = 1 + p * (n_show + 1)
            fig.add_subplot(grid[r, first]).set_axis_off()
            imgs, labs = positive_images[r][p], positive_labels[r][p]
            _check_rows(f"row {r} point {p}", imgs, labs)
            kinds = ["match" if lab == anchor_labels[r] else "mismatch" for lab in labs]
            if rejected_images is not None:
                extra_imgs, extra_labs = rejected_images[r][p], rejected_labels[r][p]
                imgs, labs = list(imgs) + list(extra_imgs), list(labs) + list(extra_labs)
                kinds += ["rejected"] * len(extra_imgs)
            for s in range(n_show):
                ax = fig.add_subplot(grid[r, first + 1 + s])
                if s < len(imgs):
                    _framed_image(ax, imgs[s], labs[s], kinds[s])
                    used.add(kinds[s])
                else:
                    _blank(ax, "none" if s == 0 else "")
                if r == 0 and s == 0:
                    ax.text(0.0, 1.3, point_names[p], fontsize=8, transform=ax.transAxes, ha="left",
                            va="bottom", fontweight="bold")
    if title:
        fig.suptitle(title, fontsize=10, y=1.0 - 0.1 / height, va="top")
    frame_legend(fig, [k for k in FRAME_MEANINGS if k in used])
    return fig


def plot_precision_curves(curves: pd.DataFrame, *, x: str = "cum_epoch", title: Optional[str] = None) -> Figure:
    """``pos_precision`` against ``x`` ('cum_epoch': epochs counted across stages, or 'epoch'), one line per
    method; dotted verticals mark where a multi-stage method's stages begin."""
    missing = {"method", "stage", x, "pos_precision"} - set(curves.columns)
    if missing:
        raise ConfigError(f"precision curves need columns method, stage, {x}, pos_precision (missing "
                          f"{sorted(missing)}). Fix: build them with ssml_lib.experiments.positive_mining."
                          "read_precision_curves.")
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7.2, 4.0))
    ax = fig.subplots()
    handles, staged, empty = [], False, False
    styles = ["-", "--", "-.", ":"]
    for i, (method, part) in enumerate(curves.groupby("method", sort=False)):
        colour = f"C{i}"
        valid = part[part["pos_precision"].notna()]
        # distinct line styles and markers, so lines lying on top of each other (e.g. at 1.0) stay visible
        ax.plot(valid[x], valid["pos_precision"], marker="os^Dv"[i % 5], markersize=4, color=colour,
                linestyle=styles[i % len(styles)], linewidth=1.4)
        handles.append(Line2D([], [], color=colour, marker="os^Dv"[i % 5], linestyle=styles[i % len(styles)],
                              label=DISPLAY_NAMES.get(method, method)))
        none = part[part["pos_precision"].isna()]
        if len(none):  # epochs where the method mined no positive at all: no precision to plot
            ax.plot(none[x], [0.0] * len(none), linestyle="none", marker="x", color=colour, markersize=6)
            empty = True
        starts = part.groupby("stage", sort=False)[x].min().iloc[1:]
        for start in starts:
            ax.axvline(start - 0.5, color=colour, linestyle=":", linewidth=0.8)
            staged = True
    if staged:
        handles.append(Line2D([], [], color="grey", linestyle=":", label="a new stage (cycle, round) begins"))
    if empty:
        handles.append(Line2D([], [], color="grey", linestyle="none", marker="x", label="no positive mined"))
    ax.set_xlabel("epoch (counted across stages)" if x == "cum_epoch" else x)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("precision of mined positives")
    ax.set_ylim(-0.04, 1.04)
    ax.grid(alpha=0.3)
    if handles:  # outside the axes: a line at 1.0 is never hidden behind it
        ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def thumbnail(image: Any, side: int = 128) -> Any:
    """A square centre crop resized to ``side`` px (uniform grid cells for images of any shape)."""
    from PIL import Image

    w, h = image.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return image.crop(box).resize((side, side), Image.BILINEAR) if s > side else image.crop(box)


# ---------------------------------------------------------------- output


def figures_dir(standin: bool, results_dir: str | Path | None = None, size: str | None = None) -> Path:
    """``results/figures`` for real data; for the stand-in ``figures/`` in its results folder
    (:func:`ssml_lib.results.results_base`: recorded ``results/standin/``, else ``runs/results/standin-<size>/``)."""
    from ..results import results_base

    return results_base(standin=standin, results_dir=results_dir, size=size) / "figures"


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """PNG of ``fig`` at ``path``, written in one rename (ssml_lib.io)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


@dataclass
class FigureResult:
    """What a figure notebook's one call returns: figures, their files, tables and the provenance record."""

    name: str
    standin: bool
    figures: dict[str, Figure]
    paths: dict[str, Path]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    notes: str = ""
    markdown: str = ""


def data_label(standin: bool) -> str:
    return STANDIN_LABEL if standin else "real data"


def show_figures(result: FigureResult) -> None:
    """Display a figure notebook's result: stand-in/real label, notes, the saved PNGs and any tables."""
    from IPython.display import Image, Markdown, display

    display(Markdown(f"**{result.name}: {data_label(result.standin)}**"))
    if result.notes:
        display(Markdown(result.notes))
    if result.markdown:
        display(Markdown(result.markdown))
    for key, path in result.paths.items():
        if str(path).endswith(".png"):
            display(Markdown(f"`{key}`: {path}"))
            display(Image(filename=str(path)))
    for key, table in result.tables.items():
        display(Markdown(f"`{key}`"))
        display(table)
