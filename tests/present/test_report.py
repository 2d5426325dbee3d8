"""The HTML report on real short runs, read back the way a browser would: parsed, not string-matched.

References are independent of bnviz.present.report: series come straight from the snapshots (or bnviz.present.views),
verdicts from claims.evidence, HTML structure from the stdlib's html.parser.
"""

import base64
import json
import re
from html.parser import HTMLParser

import numpy as np
import plotly.graph_objects as go
import pytest

from bnviz import stats
from bnviz.config import INITS, PANELS, PRESETS
from bnviz.measure import clt
from bnviz.measure.snapshot import POOLED
from bnviz.present import claims, report, views
from bnviz.present.style import variant_label

from ..helpers import SMALL, finished

PLAIN = SMALL.replace(variants=("none",), steps=20)  # nothing learns γ and β
LAYER = 1
IDS = [f"C{i}" for i in range(1, 12)]
# The figures each panel must hold, in order: its own, then Training and Figure 1 unless it is one of them.
EXPECTED = {
    "training": ["fig_training", "fig_bands"],
    "layer": ["fig_layer", "fig_training", "fig_bands"],
    "over-time": ["fig_bands", "fig_heat", "fig_training"],
    "gamma-beta": ["fig_gb", "fig_whatif", "fig_training", "fig_bands"],
    "normality": ["fig_norm", "fig_qq", "fig_training", "fig_bands"],
    "stability": ["fig_stab", "fig_smooth", "fig_training", "fig_bands"],
    "why-gaussian": ["fig_clt", "fig_bimodal", "fig_training", "fig_bands"],
    "lr-range": ["fig_training", "fig_bands"],
    "evidence": ["fig_training", "fig_bands"],
}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def plain():
    return finished(PLAIN)


# ------------------------------------------------------------------------------------------- parsing

class Node:
    def __init__(self, tag, attrs, parent=None):
        self.tag, self.attrs, self.parent, self.children, self.text = tag, dict(attrs), parent, [], []

    def all(self, tag=None):
        for c in self.children:
            if tag is None or c.tag == tag:
                yield c
            yield from c.all(tag)

    def string(self) -> str:
        return "".join(self.text) + "".join(c.string() for c in self.children)


class Tree(HTMLParser):
    """A strict little DOM: every non-void element must be closed by its own end tag, in order."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.cur, self.errors, self.doctype = self.root, [], None
        self.feed(text)
        self.close()
        if self.cur is not self.root:
            self.errors.append(f"unclosed <{self.cur.tag}>")

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if self.cur.tag != tag:
            self.errors.append(f"</{tag}> closes <{self.cur.tag}>")
            return
        self.cur = self.cur.parent

    def handle_data(self, data):
        self.cur.text.append(data)

    def by_id(self, id_):
        return next((n for n in self.root.all() if n.attrs.get("id") == id_), None)


def parse(text: str) -> Tree:
    tree = Tree(text)
    assert tree.errors == [], tree.errors[:5]
    assert tree.doctype and tree.doctype.lower() == "doctype html"
    return tree


def arr(v) -> np.ndarray:
    """A plotly JSON array: base64 typed array ({"dtype", "bdata"}) or a plain list (None -> NaN)."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return a.reshape(v["shape"]) if "shape" in v else a
    return np.array([np.nan if x is None else x for x in v], dtype=np.float64)


def plots(tree: Tree) -> dict:
    """Element id -> figure JSON, from the JSON blocks the page hands to Plotly.newPlot."""
    out = {}
    for s in tree.root.all("script"):
        if s.attrs.get("type") == "application/json":
            out[s.attrs["data-plot"]] = json.loads(s.string())
    return out


def same(a, b) -> bool:
    """Equal as float32, NaN equal to NaN (the figures send float32)."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def board(tree: Tree) -> dict:
    """Claim id -> the texts of its cells in the evidence table."""
    table = next(t for t in tree.root.all("table") if "board" in t.attrs.get("class", ""))
    rows = {}
    for tr in table.all("tr"):
        cells = list(tr.all("td"))
        if cells:
            rows[cells[0].string()] = [c.string() for c in cells]
    return rows


def render(snaps, cfg=SMALL, panel="over-time", layer=LAYER, unit=POOLED, step=None, **kw):
    step = snaps[-1].step if step is None and snaps else (step or 0)
    return report.html_report(snaps, cfg, panel=panel, layer=layer, unit=unit, step=step, **kw)


def plotly_js(tree: Tree) -> list:
    return [s for s in tree.root.all("script") if "plotly.js v" in s.string()[:200]]


# ------------------------------------------------------------------------------------------- tests

def test_plotly_embedded_once_and_nothing_fetched(small):
    link = "https://example.org/bnviz/?preset=ioffe&seed=0"
    text = render(small, link=link)
    tree = parse(text)
    assert len(re.findall(r"plotly\.js v\d", text)) == 1
    assert len(plotly_js(tree)) == 1
    for node in tree.root.all():
        assert "src" not in node.attrs, node.tag  # no <script src>, <img src>, <iframe src>
        assert node.tag not in ("link", "iframe", "object", "embed", "base")
        if "href" in node.attrs:
            assert node.tag == "a" and node.attrs["href"] == link
    styles = "".join(s.string() for s in tree.root.all("style"))
    assert "url(" not in styles and "@import" not in styles
    csp = next(m for m in tree.root.all("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp.attrs["content"]
    # Outside plotly.js itself, the only URL anywhere is the share link (as href and as its text).
    js = plotly_js(tree)[0].string()
    rest = text.replace(js, "")
    assert re.findall(r"https?://[^\s\"'<]+", rest) == [link.replace("&", "&amp;")] * 2


def test_training_figure_is_the_snapshots_numbers(small):
    tree = parse(render(small, panel="training"))
    fig = plots(tree)["fig_training"]
    steps = [s.step for s in small]
    by_label = {variant_label(v): v for v in SMALL.variants}
    seen = set()
    for tr in fig["data"]:
        if tr.get("name") not in by_label or tr.get("mode") != "lines":
            continue
        token = by_label[tr["name"]]
        field = "test_accuracy" if tr["yaxis"] == "y2" else "loss"
        want = [getattr(s.variants[token], field) for s in small]  # straight from the snapshots
        assert same(arr(tr["x"]), steps)
        assert same(arr(tr["y"]), want), (token, field)
        assert same(arr(tr["y"]), views.train_stat(small, token, field))
        assert tr["y"]["dtype"] == "f4"  # the live page's float32 typed arrays, not decimal text
        seen.add((token, field))
    assert seen == {(v, f) for v in SMALL.variants for f in ("loss", "test_accuracy")}


def test_figure_one_bands_are_the_snapshots_percentiles(small):
    step = small[3].step
    fig = plots(parse(render(small, panel="over-time", step=step)))["fig_bands"]
    col = stats.UNIT_STATS.index("p50")
    for k, token in enumerate(SMALL.variants, start=1):
        xa = "x" if k == 1 else f"x{k}"
        stage = "x" if token == "none" else "y"  # what the sigmoid receives: Wu+b, or γx̂+β with BN before it
        want = [s.variants[token].layers[LAYER].stages[stage].table[0, col] for s in small]  # row 0: pooled
        median = [t for t in fig["data"] if t.get("name") == "median (p50)" and t.get("xaxis", "x") == xa]
        assert len(median) == 1
        assert same(arr(median[0]["y"]), want)
        assert same(arr(median[0]["y"]), views.unit_stat(small, token, LAYER, stage, "p50", POOLED))
        band = next(t for t in fig["data"] if t.get("fill") == "toself" and t.get("xaxis", "x") == xa)
        p98 = views.unit_stat(small, token, LAYER, stage, "p98")
        assert same(arr(band["y"])[:len(small)], p98)
    scrub = [s for s in fig["layout"]["shapes"] if s.get("line", {}).get("dash") == "dot"]
    assert scrub and all(s["x0"] == step for s in scrub)


def test_panel_figures_are_the_views_numbers(small):
    shown = small[-1]
    figs = {}
    for panel in ("layer", "gamma-beta", "normality", "stability", "why-gaussian"):
        figs.update(plots(parse(render(small, panel=panel))))
    # Inside a layer: the bars are the stored histogram's density at the shown step.
    bars = [t for t in figs["fig_layer"]["data"] if t["type"] == "bar"]
    st = shown.variants["bn"].layers[LAYER].stages["x_hat"]
    hist = st.hists[st.units.index(POOLED)]
    want = hist.counts / (hist.counts.sum() * hist.width)
    assert any(same(arr(b["y"]), want) for b in bars)
    # γ and β: each tracked unit's γ line is that unit's entry of the full γ vector of every snapshot.
    gamma = np.array([s.variants["bn"].layers[LAYER].gamma for s in small])
    lines = [t for t in figs["fig_gb"]["data"] if t.get("name") == "tracked units" and t.get("xaxis", "x") == "x"]
    assert len(lines) == len(SMALL.tracked_units(LAYER))
    for t, u in zip(lines, SMALL.tracked_units(LAYER)):
        assert same(arr(t["y"]), gamma[:, u])
    # Normality: the default variant is the run's last one; W of x over training.
    w = views.unit_stat(small, SMALL.variants[-1], LAYER, "x", "shapiro_w")
    assert any(same(arr(t["y"]), w) for t in figs["fig_norm"]["data"] if t.get("xaxis", "x") == "x")
    # Stability: drift to the previous snapshot of each variant's activation input, over its pooled std.
    for token, stage in (("none", "x"), ("bn", "y")):
        d = views.drift(small, token, LAYER, stage, POOLED, "prev") / views.unit_stat(small, token, LAYER, stage, "std")
        assert any(same(arr(t["y"]), d) for t in figs["fig_stab"]["data"] if t.get("xaxis", "x") == "x")
    # Why Gaussian: W against fan-in of the page's default input distributions.
    ws = [arr(t["y"]) for t in figs["fig_clt"]["data"] if t.get("xaxis", "x") == "x"]
    for dist in report.CLT_DISTS:
        assert any(same(y, clt.clt_experiment(dist, seed=SMALL.seed).shapiro_w) for y in ws), dist


@pytest.mark.parametrize("step_index", [-1, 2])
def test_evidence_board_lists_every_claim_with_its_verdict(small, step_index):
    step = small[step_index].step
    rows = board(parse(render(small, panel="evidence", step=step)))
    want = claims.evidence(tuple(s for s in small if s.step <= step), SMALL)
    assert list(rows) == IDS == [v.claim for v in want]
    for v in want:
        cid, title, verdict, figure, rule, detail = rows[v.claim]
        assert title.startswith(v.title) and verdict == v.verdict
        assert (figure, rule, detail) == (v.figure, v.threshold, v.detail)


@pytest.mark.parametrize("panel", list(PANELS))
def test_every_panel_renders_its_figures(small, panel):
    tree = parse(render(small, panel=panel))
    divs = [n.attrs["id"] for n in tree.root.all("div") if "plot" in n.attrs.get("class", "").split()]
    assert divs == EXPECTED[panel]
    figs = plots(tree)
    assert list(figs) == divs
    blocks = [s.string() for s in tree.root.all("script") if s.attrs.get("type") == "application/json"]
    assert all("<" not in b for b in blocks)  # no markup, hence never a "</script>", inside the data
    for key, fig in figs.items():
        assert fig["data"], key  # a real figure, not a "waiting" message
    assert list(board(tree)) == IDS
    assert len(plotly_js(tree)) == 1


def test_hostile_title_link_and_claim_texts_are_text(small, monkeypatch):
    real = claims.evidence

    def hostile(snaps, cfg):
        return [claims.Verdict(v.claim, HOSTILE, v.verdict, HOSTILE, HOSTILE, HOSTILE, v.panel, v.value)
                for v in real(snaps, cfg)]

    monkeypatch.setattr(claims, "evidence", hostile)
    link = "https://example.org/?a=<script>alert(2)</script>&b=\"'"
    text = render(small, panel="evidence", title=HOSTILE, link=link)
    tree = parse(text)
    rest = text.replace(plotly_js(tree)[0].string(), "")
    assert "<script>alert" not in rest and "<img" not in rest
    assert not list(tree.root.all("img"))
    # Scripts: plotly.js, the drawing script, and one JSON block per figure; nothing injected.
    scripts = list(tree.root.all("script"))
    assert len(scripts) == 2 + len(EXPECTED["evidence"])
    assert next(tree.root.all("title")).string() == HOSTILE
    assert next(tree.root.all("h1")).string() == HOSTILE
    anchors = list(tree.root.all("a"))
    assert len(anchors) == 1 and anchors[0].attrs["href"] == link and anchors[0].string() == link
    for cells in board(tree).values():
        assert cells[3:] == [HOSTILE] * 3


@pytest.mark.parametrize("link", ["javascript:alert(1)", "data:text/html,<b>x</b>", "//evil.example/x",
                                  "https://ok.example/ x", "ftp://files.example/r"])
def test_links_other_than_http_are_shown_as_text(small, link):
    tree = parse(render(small, panel="training", link=link))
    assert not list(tree.root.all("a"))
    assert link in tree.root.string()


def test_header_says_what_run_and_step(small):
    tree = parse(render(small, panel="layer", step=35))  # between snapshots: the one before is shown
    head = next(tree.root.all("header")).string()
    assert report.QUESTION in head
    assert "step 30 of 60" in head and "layer 2 of 2" in head and "all units pooled" in head
    for words in ("digits", "2 hidden layers of 16, 12 sigmoid units", "batch 60", "learning rate 0.5",
                  "optimizer sgd", "60 steps", "seed 0", "none", "bn"):
        assert words in head, words
    assert re.search(r"Generated\d{4}-\d\d-\d\d \d\d:\d\d UTC", head)
    fig = plots(tree)["fig_layer"]
    assert "step 30" in fig["layout"]["title"]["text"]
    # The board judges only what was measured up to the shown step.
    want = claims.evidence(tuple(s for s in small if s.step <= 30), SMALL)
    assert [r[2] for r in board(tree).values()] == [v.verdict for v in want]


def test_preset_is_described_in_words():
    cfg = PRESETS["ioffe"].config
    text = dict(report.describe_config(cfg))
    assert text["Preset"].startswith("ioffe: ")
    assert "3 hidden layers of 100 sigmoid units" in text["Network"]
    assert "BN (bn, before the activation)" in text["Variants"] and "no norm (none)" in text["Variants"]
    assert "learning rate 0.5, batch 60, 5,000 steps, seed 0" in text["Training"]
    assert text["Initial weights"] == f"pytorch: {INITS['pytorch']}"
    custom = dict(report.describe_config(cfg.replace(dataset="features", input_dist="bimodal", n_features=4)))
    assert custom["Preset"].startswith("custom") and "4 synthetic inputs" in custom["Data"]


def test_without_snapshots_or_affine_variants(plain):
    tree = parse(report.html_report((), SMALL, panel="over-time", layer=0, unit=POOLED, step=0))
    assert [r[2] for r in board(tree).values()] == ["not measured"] * len(IDS)
    tree = parse(render(plain, cfg=PLAIN, panel="gamma-beta"))
    assert "No variant in this run learns γ and β" in tree.root.string()
    assert list(plots(tree)) == ["fig_training", "fig_bands"]


def test_bad_view_is_refused(small):
    with pytest.raises(ValueError, match="panel"):
        render(small, panel="nope")
    with pytest.raises(ValueError, match="layer"):
        render(small, layer=2)
    with pytest.raises(ValueError, match="unit"):
        render(small, unit=99)
    tree = parse(render(small, panel="normality", unit=SMALL.tracked_units(LAYER)[0]))
    assert "unit 0" in next(tree.root.all("header")).string()


def test_printable_and_compact(small):
    text = render(small, panel="gamma-beta")
    tree = parse(text)
    css = "".join(s.string() for s in tree.root.all("style"))
    assert "@media print" in css and re.search(r"@page\{size:A4;margin:12mm\}", css)
    for block in (r"figure\.fig", r"table\.board tr", r"\.note"):  # figures, verdicts and notes stay whole
        assert re.search(block + r"\{[^}]*break-inside:avoid", css), block
    assert not re.search(r"(?<![-\w])width:\d+px", css)  # no fixed widths: the page and the paper set them
    width = int(re.search(r"pw=(\d+)", text).group(1))
    assert width <= (210 - 2 * 12) / 25.4 * 96  # A4 less the margins, in CSS px (tests/e2e/test_handout.py prints it)
    assert "beforeprint" in text  # the figures are laid out again for paper
    js = plotly_js(tree)[0].string()
    assert len(text.encode()) - len(js.encode()) < 250_000  # figures + board of a small run


def test_report_filename():
    assert report.report_filename(PRESETS["ioffe"].config, 5000) == "bnviz-report-digits-seed0-step5000.html"
    name = report.report_filename(SMALL.replace(dataset="features", seed=7), 30)
    assert name == "bnviz-report-features-seed7-step30.html"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", name)


def test_conv_and_regression_presets_are_described_in_their_own_words():
    conv = dict(report.describe_config(PRESETS["santurkar-conv"].config))
    assert "3 3x3 conv layers of 16, 32, 32 relu channels, global average pooling, softmax output" in conv["Network"]
    assert "64 fixed training examples (4,096 values per channel" in conv["Measured"]
    dln = dict(report.describe_config(PRESETS["santurkar-dln"].config))
    assert "25 hidden layers of 16 identity units, linear regression output" in dln["Network"]
    assert "16 synthetic inputs" in dln["Data"] and "R²" in dln["Data"]
    assert dln["Initial weights"].startswith("orthogonal: Saxe et al. (2014): weights a random orthogonal matrix")


def test_a_conv_regression_run_reports_channels_and_r2():
    cfg = SMALL.replace(dataset="regression", n_features=16, architecture="conv", widths=(3, 4), activation="identity",
                        variants=("none", "bn"), steps=20, snapshot_every=10)
    snaps = finished(cfg)
    tree = parse(report.html_report(snaps, cfg, panel="training", layer=1, unit=POOLED, step=20))
    head = next(tree.root.all("header")).string()
    assert "all channels pooled" in head and "test R²" in plots(tree)["fig_training"]["layout"]["title"]["text"]
    fig = plots(tree)["fig_training"]
    r2 = [tr for tr in fig["data"] if tr.get("yaxis") == "y2" and tr.get("mode") == "lines"]
    assert r2 and all(same(arr(tr["y"]),
                           views.train_stat(snaps, tr["name"] == "BN" and "bn" or "none", "test_accuracy"))
                      for tr in r2)


def words(text: str) -> list[str]:
    """The words of a plotly title, its <br> and <span> markup left out."""
    return re.sub(r"<[^>]*>", " ", text).split()


def test_titles_are_wrapped_for_paper_and_the_cells_keep_their_size(small):
    from bnviz.present.style import fit_title

    built = [f for panel in PANELS for f in report._panel_figures(small, small[-1], SMALL, panel, LAYER, POOLED)[0]]
    assert len(built) >= 10
    for f in built:
        lay = f.fig.layout
        fitted = fit_title(f.fig, report.PRINT_WIDTH_PX).layout
        assert fitted.height - fitted.margin.t == lay.height - lay.margin.t, f.key  # the cells' room is the same
        assert fitted.height >= lay.height and fitted.title.text.count("<br>") >= lay.title.text.count("<br>")
        assert words(fitted.title.text) == words(lay.title.text), f.key  # the same words, more lines
        assert words(fitted.meta["describe"]) == words(lay.meta["describe"]), f.key
        assert 0 < fitted.title.y < 1 and 0 < fitted.legend.y < fitted.title.y
    plain = go.Figure(layout=dict(title=dict(text="a figure of its own"), height=300))
    assert fit_title(plain, 300).layout == plain.layout  # not built by style.figure: left as it is


@pytest.mark.slow
def test_a_report_with_the_shape_variants_names_them_and_draws_every_panel(shapes_run):
    snaps, cfg = shapes_run.history.snapshots(), shapes_run.config
    text = dict(report.describe_config(cfg))["Variants"]
    for words in ("BN→Gauss (bn_gauss, before the activation)", "BN→uniform (bn_uniform, before",
                  "BN→Laplace (after act.) (bn_laplace@after, after the activation)"):
        assert words in text, words
    for panel in PANELS:
        figs = plots(parse(render(snaps, cfg, panel=panel)))
        assert figs and all(fig["data"] for fig in figs.values()), panel
    layer = plots(parse(render(snaps, cfg, panel="layer")))["fig_layer"]
    assert {t["name"] for t in layer["data"] if t.get("name")} >= {"BN→Gauss", "BN→uniform"}
