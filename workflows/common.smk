# Shared helpers for the generic rules: the job plan is PLAN (reprosuite.workflow.Plan).
import shlex

PY = shlex.quote(sys.executable) + " -m reprosuite"
COMMON = f"--scale {PLAN.scale} --results {shlex.quote(RESULTS)}"
DATA_DIR = f"--data-dir {shlex.quote(config['data_dir'])}" if config.get("data_dir") else ""


wildcard_constraints:
    paper="|".join(PLAN.papers) or "none",
    experiment=r"[A-Za-z0-9_]+",
    shard=r"[A-Za-z0-9_.=+-]+",
    seed=r"\d+",
    name=r"[A-Za-z0-9_]+",


def run_needs(wc):
    """Records of the runs whose artifacts this run loads (shared models trained once)."""
    return PLAN.needs(wc.paper, wc.experiment, wc.shard, wc.seed)


def run_resource(key, default):
    def get(wc):
        plan = PLAN.papers[wc.paper]
        value = plan.paper.experiment(wc.experiment).resources(plan.cfg).get(key, default)
        if key == "gpu" and config["device"] == "cpu":
            return 0
        return value

    return get


def resolved(wc):
    """The paper's resolved config (written at parse time), read by every step of the paper."""
    return "--resolved " + shlex.quote(PLAN.papers[wc.paper].config_path)


def settings_hash(wc):
    """Changing the settings an experiment reads (or those of the runs it needs) re-runs its jobs
    (Snakemake's params trigger); other settings of the paper leave them alone."""
    return PLAN.papers[wc.paper].experiment_hash(wc.experiment)
