"""Command-line conveniences: numeric config-group choices reach Hydra as strings."""

from neuroclips.utils.cli import quote_numeric_group_overrides


def test_numeric_subject_choices_are_quoted():
    assert quote_numeric_group_overrides(["subj=2", "subj=1,2,3", "seed=3", "stage=sr"]) == [
        "subj='2'",
        "subj='1','2','3'",
        "seed=3",
        "stage=sr",
    ]
