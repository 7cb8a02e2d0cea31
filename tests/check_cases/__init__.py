"""Check cases: for every check function of every paper, a table that must PASS and one that must FAIL.

Each paper has a module ``tests/check_cases/<paper>.py`` exporting ``CASES``:

    CASES = {
        "check_name": {
            "PASS": lambda: (tables, params),          # tables: {name: DataFrame}; params: the claim's params
            "FAIL": lambda: (tables, params),
            "INCONCLUSIVE": lambda: (tables, params),  # where the check decides on an interval
        },
    }

``tests/test_check_cases.py`` runs every case through the claims engine and fails when a paper
declares a check without both a PASS and a FAIL case, so no check can pass by construction.
"""
