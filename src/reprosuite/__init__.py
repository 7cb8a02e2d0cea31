"""reprosuite: claim-by-claim reproductions of five ML papers as one Snakemake DAG."""

__version__ = "0.1.0"
