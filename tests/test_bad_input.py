"""Bad input is refused at parse time, before any job runs, in one line naming the key, the value
and what is allowed. One case per row of the README's troubleshooting table ("Bad input")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reprosuite.config import ConfigError
from reprosuite.workflow import make_plan

ROOT = Path(__file__).resolve().parents[1]

# (case id, suite config, YAML edit (paper, file, text appended) or None, fragments the message must hold)
CASES = [
    ("unknown scale", {"scale": "huge"}, None, ["scale = 'huge'", "allowed: smoke, default, paper"]),
    ("unknown device", {"device": "tpu"}, None, ["device = 'tpu'", "allowed: auto, cpu, cuda"]),
    ("unknown paper", {"papers": ["topolgy"]}, None, ["papers = 'topolgy'", "allowed: all, topology"]),
    ("empty paper list", {"papers": []}, None, ["papers = []", "allowed: all, topology"]),
    ("unknown suite key", {"sclae": "smoke"}, None, ["unknown key 'sclae'", "allowed: scale"]),
    ("negative seed", {"seeds": -1}, None, ["seeds = -1", "allowed: a non-empty list of integers >= 0"]),
    ("seed not a number", {"seeds": "abc"}, None, ["seeds = 'abc'", "allowed: a non-empty list"]),
    ("threads below 1", {"threads_per_job": 0}, None, ["threads_per_job = 0", "CPU threads"]),
    ("missing data_dir", {"data_dir": "/no/such/folder"}, None, ["data_dir = '/no/such/folder'", "allowed: an existing folder"]),
    ("malformed set", {"set": "fig3.lr"}, None, ["set = 'fig3.lr'", "expected: section.key=value"]),
    ("set of an unknown key", {"set": "fig3.lrr=1", "papers": ["topology"]}, None, ["set fig3.lrr", "allowed: a key of a paper's config"]),
    ("malformed YAML", {"papers": ["topology"]}, ("topology", "default.yaml", "fig3: [1, 2\n"),
     ["experiments/topology/default.yaml: malformed YAML at line"]),
    ("duplicate key", {"papers": ["topology"]}, ("topology", "default.yaml", "seeds: [0]\n"),
     ["experiments/topology/default.yaml: duplicate key 'seeds'"]),
    ("empty section", {"papers": ["topology"]}, ("topology", "default.yaml", "transient:\n"),
     ["section 'transient' is empty", "give it keys or remove it"]),
    ("unknown nested key", {"papers": ["topology"]}, ("topology", "default.yaml", "transient: {n_valuez: [4]}\n"),
     ["unknown key 'transient.n_valuez'", "allowed: "]),
    ("wrong type", {"set": "topology.fig3.epochs=two"}, None, ["fig3.epochs = 'two' must be an integer"]),
    ("non-positive learning rate", {"set": "topology.fig3.lr=0"}, None, ["fig3.lr = 0.0 must be > 0"]),
    ("non-positive batch size", {"set": "topology.fig3.batch_size=0"}, None, ["batch_size = 0 must be"]),
    ("non-positive epochs", {"set": "topology.fig3.epochs=0"}, None, ["epochs = 0 must be"]),
    ("alpha <= 0", {"set": "topology.fig3.alphas=[0.0]"}, None, ["alphas", "must be > 0"]),
    ("unknown topology", {"set": "topology.fig3.topologies=[moebius]"}, None, ["'moebius'", "allowed: "]),
    ("fraction outside (0, 1]", {"set": "lora_risk.practical.split=[0.5, 0.6, -0.1]"}, None,
     ["practical.split", "fractions in (0, 1)"]),
    ("rank <= 0", {"set": "lora_risk.gd.rank=0"}, None, ["gd.rank = 0 must be in 1..min(dx, dy)"]),
    ("forget class the data set lacks", {"set": "collateral.main.forget_classes=[12]"}, None,
     ["main.forget_classes = (12,) must be < 10"]),
    ("forget fraction outside (0, 1]", {"set": "collateral.main.forget_fracs=[1.5]"}, None,
     ["forget_fracs has 1.5", "allowed: (0, 1]"]),
    ("negative unlearning learning rate", {"set": "collateral.main.hp.ga.lr=-1"}, None, ["lr = -1.0 must be > 0"]),
    ("unknown unlearning method", {"set": "collateral.main.methods=[scrubb]"}, None, ["'scrubb'", "allowed: "]),
    ("delta outside (0, 1)", {"set": "certified.constants.delta=1.5"}, None, ["delta = 1.5 must be in (0, 1)"]),
    ("block count k < 1", {"set": "certified.nft.ks=[0]"}, None, ["ks = (0,)", "be >= 1"]),
    ("k > n", {"set": "teleportation.tab2.tele_ks=[30]"}, None, ["tele_ks has k = 30", "must be in [1, n_nodes = 25]"]),
    ("epsilon <= 0", {"set": "certified.mnist.epsilons=[0]"}, None, ["epsilons = (0.0,)", "> 0"]),
    ("unknown block type", {"set": "certified.fig2.block_types=[foo]"}, None, ["'foo'", "allowed: qr, perm_identity"]),
    ("unknown D-SGD graph", {"set": "teleportation.fig2.dsgd_graphs=[moebius]"}, None, ["'moebius'", "allowed"]),
    ("non-positive step size grid", {"set": "teleportation.fig2.lrs=[0]"}, None, ["fig2.lrs = (0.0,)", "> 0"]),
]


def _root_with(tmp_path: Path, edit) -> Path:
    if edit is None:
        return ROOT
    for name in ("config", "experiments"):
        shutil.copytree(ROOT / name, tmp_path / name)
    paper, file, text = edit
    path = tmp_path / "experiments" / paper / file
    path.write_text(path.read_text() + "\n" + text)
    return tmp_path


@pytest.mark.parametrize("case, config, edit, fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_in_one_line(case, config, edit, fragments, tmp_path):
    with pytest.raises(ConfigError) as err:
        make_plan(dict(config), _root_with(tmp_path, edit))
    message = str(err.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"


def test_there_are_at_least_25_cases():
    assert len(CASES) >= 25, len(CASES)


def test_the_readme_troubleshooting_table_has_a_row_per_case():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Bad input", 1)[1].split("###", 1)[0]
    rows = {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")}
    missing = [case for case, *_ in CASES if case not in rows]
    assert not missing, f"README troubleshooting lacks rows for {missing}"
