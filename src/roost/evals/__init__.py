"""Datasets, evaluations over them, online experiments and user feedback on runs."""
