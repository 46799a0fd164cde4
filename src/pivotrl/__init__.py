"""pivotrl: Pivot-Based RL with Semantically Verifiable Rewards (PB-RLSVR, arXiv 2509.25543).

The pipeline, one module or sub-package per stage:

    data (pivotrl.data) -> pivot references -> rewards -> training -> evaluation -> report

Shared pieces: ``pivotrl.languages`` (the language registry), ``pivotrl.answers`` (answer extraction and
checking in every language), ``pivotrl.models`` (loading and generating with any causal LM), and
``pivotrl.records`` (the typed records passed between stages).
"""

__version__ = "0.1.0"
