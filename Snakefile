# reprosuite: one DAG from configs to runs, tables, figures and checked claims.
#   snakemake --cores all                                   default scale, offline, CPU
#   snakemake --cores all --config scale=paper device=cuda  paper scale on a GPU box
#   snakemake --profile profiles/slurm --config scale=paper the same on a Slurm cluster
# Entry only: config, validation, includes, rule all. The generic rules live in workflows/.

import sys
from pathlib import Path

from reprosuite.workflow import make_plan
from reprosuite.config import ConfigError


configfile: "config/config.yaml"


try:
    PLAN = make_plan(config, Path(workflow.basedir), write=True)
except ConfigError as err:  # bad input stops before any job, in one line
    sys.exit(f"reprosuite: {err}")

RESULTS = PLAN.results


include: "workflows/common.smk"
include: "workflows/run.smk"
include: "workflows/report.smk"


rule all:
    input:
        PLAN.targets(),
    default_target: True
